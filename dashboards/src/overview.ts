// The runbook's 9 AM check at a glance: every stat is green when that check passes, with the
// runbook's number in its description. `housekeeper check` prints the same checks as a table.
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import {
  finish,
  higherIsWorse,
  housekeeperDashboard,
  increaseFromZero,
  instant,
  labelVariable,
  lowerIsWorse,
  pgConnectionsRatio,
  query,
  redisHitRatio,
  redisMemoryRatio,
  row,
  sel,
  stat,
  steps,
  timeseries,
  upDown,
  valueText,
  withThresholdLines,
  yesNo,
  zeroIsGood,
} from './common.ts';
import { HOUR, runbook as r } from './runbook.ts';

export const uid = 'housekeeper-overview';

const pct = (x: number): string => `${Math.round(x * 100)}%`;

// Host metrics come from node_exporter (DESIGN.md: not re-implemented); `$instance` picks hosts.
const host = 'instance=~"$instance"';
// The same file systems and interfaces as alerts/host.yml: real, writable ones.
const fs = `${host}, fstype!~"tmpfs|devtmpfs|ramfs|overlay|squashfs|iso9660|autofs|nsfs|fuse[.].*"`;
const nic = `${host}, device!~"lo|veth.*|docker.*|br-.*|virbr.*|cni.*|flannel.*|cali.*"`;

const cpu = `1 - avg by (instance) (rate(node_cpu_seconds_total{${host}, mode="idle"}[$__rate_interval]))`;
const memory = `1 - max by (instance) (node_memory_MemAvailable_bytes{${host}} / node_memory_MemTotal_bytes{${host}})`;
const disk = `max by (instance) ((1 - node_filesystem_avail_bytes{${fs}} / node_filesystem_size_bytes{${fs}}) and node_filesystem_readonly{${fs}} == 0)`;
const network = (dir: 'receive' | 'transmit'): string =>
  `max by (instance) (rate(node_network_${dir}_bytes_total{${nic}}[$__rate_interval]) / (node_network_speed_bytes{${nic}} > 0))`;

export function build(): dashboard.Dashboard {
  const d = housekeeperDashboard({
    uid,
    title: 'Housekeeper / Overview',
    description: "The runbook's morning check: every target, database, cache, index, backup, log cluster and certificate, green or not.",
    targetSelector: 'housekeeper_collector_success',
    from: 'now-12h',
  }).withVariable(labelVariable('instance', 'Host', 'node_uname_info', 'instance'));

  d.withRow(row('Targets'))
    .withPanel(
      stat('Collections failing', 'none', 'Collector/target pairs whose last collection failed or timed out (housekeeper_collector_success = 0). Any is red: that target\'s metrics are missing.')
        .withTarget(instant(`count(max by (collector, target) (housekeeper_collector_success${sel()}) == 0) or vector(0)`, 'failing'))
        .thresholds(zeroIsGood()),
    )
    .withPanel(
      stat('Targets', 'none', 'Every configured target, by collector: UP when its last collection succeeded.')
        .span(20)
        .withTarget(instant(`min by (collector, target) (housekeeper_collector_success${sel()})`, '{{collector}} {{target}}'))
        .mappings(upDown())
        .thresholds(steps('red', [1, 'green'])),
    );

  d.withRow(row('Postgres, PgBouncer, Redis'))
    .withPanel(
      stat('Postgres connections', 'percentunit', `Client connections over the usable maximum (max_connections less reserved slots). Runbook: alert at ${pct(r.connections.warn)}.`)
        .withTarget(instant(pgConnectionsRatio(), '{{target}}'))
        .thresholds(higherIsWorse(r.connections.warn, r.connections.crit))
        .decimals(0),
    )
    .withPanel(
      stat('Replication lag', 's', `Seconds since the last replayed transaction, on each replica. Runbook: under ${r.replicationLagSeconds.warn} s is healthy.`)
        .withTarget(instant(`max by (target) (pg_replication_lag_seconds${sel()} and on (target, instance) (pg_replication_is_replica${sel()} == 1))`, '{{target}}'))
        .thresholds(higherIsWorse(r.replicationLagSeconds.warn, r.replicationLagSeconds.crit))
        .noValue('no replicas'),
    )
    .withPanel(
      stat('Long-running queries', 'none', `Client queries active for longer than ${r.longQuerySeconds} s, per server.`)
        .withTarget(instant(`sum by (target) (max by (target, datname) (pg_long_running_queries${sel()}))`, '{{target}}'))
        .thresholds(zeroIsGood('yellow')),
    )
    .withPanel(
      stat('PgBouncer clients waiting', 'none', 'Clients waiting for a server connection: the pool is too small or the database is slow.')
        .withTarget(instant(`sum by (target) (max by (target, database, user) (pgbouncer_pools_client_waiting_connections${sel()}))`, '{{target}}'))
        .thresholds(zeroIsGood('yellow')),
    )
    .withPanel(
      stat('Redis memory', 'percentunit', `Used memory over maxmemory. Runbook: under ${pct(r.redisMemory.warn)}.`)
        .withTarget(instant(redisMemoryRatio(), '{{target}}'))
        .thresholds(higherIsWorse(r.redisMemory.warn, r.redisMemory.crit))
        .decimals(0),
    )
    .withPanel(
      stat('Redis hit ratio', 'percentunit', `Keyspace hits over lookups in the last ${r.hitRatioWindow}. Runbook: above ${pct(r.hitRatio.warn)}.`)
        .withTarget(instant(redisHitRatio(r.hitRatioWindow), '{{target}}'))
        .thresholds(lowerIsWorse(r.hitRatio.warn))
        .decimals(1)
        .noValue('no lookups'),
    );

  d.withRow(row('Vector index, backups, Elasticsearch, certificates'))
    .withPanel(
      stat('FAISS index', 'none', 'Whether FAISS loads each index file (missing, truncated or corrupt: BROKEN; the runbook rebuilds it).')
        .withTarget(instant(`min by (target) (faiss_index_loadable${sel()})`, '{{target}}'))
        .mappings(yesNo('OK', 'BROKEN'))
        .thresholds(steps('red', [1, 'green'])),
    )
    .withPanel(
      stat('FAISS recall@10', 'percentunit', `Recall@10 against exact search; red under the default recall_floor (${pct(r.faissRecallFloorDefault)}); the alert uses each index's own floor.`)
        .withTarget(instant(`min by (target) (faiss_index_recall_at_10${sel()})`, '{{target}}'))
        .thresholds(lowerIsWorse(r.faissRecallFloorDefault))
        .decimals(1),
    )
    .withPanel(
      stat('Newest backup age', 's', `Age of the newest backup of each kind. Runbook: daily; alert after ${r.backupAgeSeconds.warn / HOUR} h, critical after ${r.backupAgeSeconds.crit / HOUR} h.`)
        .withTarget(instant(`time() - max by (kind) (backup_last_timestamp_seconds${sel()})`, '{{kind}}'))
        .thresholds(higherIsWorse(r.backupAgeSeconds.warn, r.backupAgeSeconds.crit))
        .decimals(1),
    )
    .withPanel(
      stat('Backups verified', 'none', 'Whether the newest backup of each kind passed verification (size, SHA-256, pg_restore --list).')
        .withTarget(instant(`min by (kind) (backup_last_verified_success${sel()})`, '{{kind}}'))
        .mappings(yesNo('VERIFIED', 'NOT VERIFIED'))
        .thresholds(steps('red', [1, 'green'])),
    )
    .withPanel(
      stat('Elasticsearch', 'none', 'Cluster health colour.')
        .withTarget(
          instant(
            `max by (target) (elasticsearch_cluster_health_status${sel('color="red"')}) * 2 + max by (target) (elasticsearch_cluster_health_status${sel('color="yellow"')})`,
            '{{target}}',
          ),
        )
        .mappings(valueText({ '0': ['GREEN', 'green'], '1': ['YELLOW', 'yellow'], '2': ['RED', 'red'] }))
        .thresholds(steps('green', [1, 'yellow'], [2, 'red'])),
    )
    .withPanel(
      stat('Certificate days left', 'd', `Days until the first certificate in each chain expires. Runbook: check ${r.certDays.warn} days ahead.`)
        .withTarget(instant(`(min by (target) (ssl_chain_earliest_not_after${sel()}) - time()) / 86400`, '{{target}}'))
        .thresholds(lowerIsWorse(r.certDays.warn, r.certDays.crit))
        .decimals(0),
    );

  d.withRow(row('Remediation'))
    .withPanel(
      stat('Open circuits', 'none', 'Rules whose circuit is open: they stopped acting after repeated failures, and a human must look.')
        .withTarget(instant('count(max by (rule) (housekeeper_remediation_circuit_open) == 1) or vector(0)', 'open'))
        .thresholds(zeroIsGood()),
    )
    .withPanel(
      stat('Remediations failed (24h)', 'none', 'Remediations that failed (critical) or ran without clearing the condition (warning), in the last 24 hours.')
        .withTarget(instant(`sum${increaseFromZero('housekeeper_remediations_total{outcome="failed"}', '24h')} or vector(0)`, 'failed'))
        .withTarget(instant(`sum${increaseFromZero('housekeeper_remediations_total{outcome="not_fixed"}', '24h')} or vector(0)`, 'not fixed'))
        .thresholds(zeroIsGood())
        .overrideByName('not fixed', [{ id: 'thresholds', value: zeroIsGood('yellow').build() }])
        .decimals(0),
    )
    .withPanel(
      stat('Remediations fixed (24h)', 'none', 'Remediations that ran and cleared the condition, in the last 24 hours.')
        .withTarget(instant(`sum${increaseFromZero('housekeeper_remediations_total{outcome="fixed"}', '24h')} or vector(0)`, 'fixed'))
        .thresholds(steps('blue'))
        .decimals(0),
    )
    .withPanel(
      stat('Jobs queued', 'none', 'Remediation jobs waiting in the durable queue (queued or deferred).')
        .withTarget(instant('sum(max by (state) (housekeeper_remediation_queue_jobs{state=~"queued|deferred"})) or vector(0)', 'queued'))
        .thresholds(steps('blue')),
    )
    .withPanel(
      stat('Webhook refused (24h)', 'none', 'Alertmanager notifications refused in the last 24 hours (unauthorized, invalid or unavailable).')
        .withTarget(instant(`sum${increaseFromZero('housekeeper_webhook_notifications_total{result!="accepted"}', '24h')} or vector(0)`, 'refused'))
        .thresholds(zeroIsGood('yellow'))
        .decimals(0),
    )
    .withPanel(
      stat('Collector time', 's', 'The slowest collection of the last scrape: near the scrape timeout, metrics start going missing.')
        .withTarget(instant(`max(housekeeper_collector_duration_seconds${sel()})`, 'slowest'))
        .thresholds(steps('green', [5, 'yellow'], [10, 'red']))
        .decimals(2),
    );

  d.withRow(row('Host (node_exporter)'))
    .withPanel(
      stat('CPU', 'percentunit', `CPU busy, per host. Runbook: alert ${pct(r.cpu.warn)}, critical ${pct(r.cpu.crit)}.`)
        .span(6)
        .withTarget(instant(cpu, '{{instance}}'))
        .thresholds(higherIsWorse(r.cpu.warn, r.cpu.crit))
        .decimals(0),
    )
    .withPanel(
      stat('Memory', 'percentunit', `Memory in use (not available), per host. Runbook: alert ${pct(r.memory.warn)}, critical ${pct(r.memory.crit)}.`)
        .span(6)
        .withTarget(instant(memory, '{{instance}}'))
        .thresholds(higherIsWorse(r.memory.warn, r.memory.crit))
        .decimals(0),
    )
    .withPanel(
      stat('Disk', 'percentunit', `Fullest filesystem, per host. Runbook: alert ${pct(r.disk.warn)}, critical ${pct(r.disk.crit)}.`)
        .span(6)
        .withTarget(instant(disk, '{{instance}}'))
        .thresholds(higherIsWorse(r.disk.warn, r.disk.crit))
        .decimals(0),
    )
    .withPanel(
      stat('Network', 'percentunit', `Busiest interface's traffic over its link speed, in and out, per host. Runbook: alert ${pct(r.network.warn)}, critical ${pct(r.network.crit)}.`)
        .span(6)
        .withTarget(instant(network('receive'), '{{instance}} in'))
        .withTarget(instant(network('transmit'), '{{instance}} out'))
        .thresholds(higherIsWorse(r.network.warn, r.network.crit))
        .decimals(0),
    )
    .withPanel(
      withThresholdLines(timeseries('CPU', 'percentunit', 'CPU busy, per host.').span(8).min(0).max(1), higherIsWorse(r.cpu.warn, r.cpu.crit))
        .withTarget(query(cpu, '{{instance}}')),
    )
    .withPanel(
      withThresholdLines(timeseries('Memory', 'percentunit', 'Memory in use, per host.').span(8).min(0).max(1), higherIsWorse(r.memory.warn, r.memory.crit))
        .withTarget(query(memory, '{{instance}}')),
    )
    .withPanel(
      withThresholdLines(timeseries('Disk', 'percentunit', 'Fullest filesystem, per host.').span(8).min(0).max(1), higherIsWorse(r.disk.warn, r.disk.crit))
        .withTarget(query(disk, '{{instance}}')),
    );

  return finish(d);
}
