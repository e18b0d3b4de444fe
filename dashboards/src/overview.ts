// The runbook's 9 AM check at a glance: every stat is green when that check passes, with the
// runbook's number in its description. `housekeeper check` prints the same checks as a table.
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import {
  backupsVerifiedStat,
  certificateDaysLeftStat,
  collectionsStat,
  elasticsearchHealthStat,
  faissLoadableStat,
  faissRecallStat,
  longRunningQueriesStat,
  newestBackupAgeStat,
  openCircuitsStat,
  pgbouncerClientsWaitingStat,
  pgConnectionsStat,
  redisHitRatioStat,
  redisMemoryStat,
  remediationsFailedStat,
  remediationsFixedStat,
  replicationLagStat,
} from './check-stats.ts';
import type { StatBuilder, TimeseriesBuilder } from './common.ts';
import {
  defineDashboard,
  higherIsWorse,
  increaseFromZero,
  instant,
  labelVariable,
  percent,
  query,
  row,
  sel,
  stat,
  steps,
  timeseries,
  withThresholdLines,
  zeroIsGood,
} from './common.ts';
import { HOUR, runbook as r } from '../../src/runbook.ts';

// Host metrics come from node_exporter (docs/architecture.md: not re-implemented); `$instance` picks hosts.
const host = 'instance=~"$instance"';
// The same file systems and interfaces as alerts/host.yml: real, writable ones.
const fs = `${host}, fstype!~"tmpfs|devtmpfs|ramfs|overlay|squashfs|iso9660|autofs|nsfs|fuse[.].*"`;
const nic = `${host}, device!~"lo|veth.*|docker.*|br-.*|virbr.*|cni.*|flannel.*|cali.*"`;

const cpu = `1 - avg by (instance) (rate(node_cpu_seconds_total{${host}, mode="idle"}[$__rate_interval]))`;
const memory = `1 - max by (instance) (node_memory_MemAvailable_bytes{${host}} / node_memory_MemTotal_bytes{${host}})`;
const disk = `max by (instance) ((1 - node_filesystem_avail_bytes{${fs}} / node_filesystem_size_bytes{${fs}}) and node_filesystem_readonly{${fs}} == 0)`;
const network = (dir: 'receive' | 'transmit'): string =>
  `max by (instance) (rate(node_network_${dir}_bytes_total{${nic}}[$__rate_interval]) / (node_network_speed_bytes{${nic}} > 0))`;

/** The runbook's alert levels for a host resource (ratios of its capacity). */
interface HostLimits {
  warn: number;
  crit: number;
}

/** A host's usage of one resource, per host, at the runbook's `limits`; its description ends with them. */
function hostUsageStat(title: string, description: string, limits: HostLimits, ...targets: prometheus.DataqueryBuilder[]): StatBuilder {
  const p = stat(title, 'percentunit', `${description} Runbook: alert ${percent(limits.warn)}, critical ${percent(limits.crit)}.`).span(6);
  for (const t of targets) p.withTarget(t);
  return p.thresholds(higherIsWorse(limits.warn, limits.crit)).decimals(0);
}

/** A host's usage of one resource over time, per host, with the runbook's `limits` drawn. */
function hostUsageGraph(title: string, description: string, limits: HostLimits, expr: string): TimeseriesBuilder {
  return withThresholdLines(timeseries(title, 'percentunit', description).span(8).min(0).max(1), higherIsWorse(limits.warn, limits.crit)).withTarget(query(expr, '{{instance}}'));
}

export default defineDashboard({
  uid: 'housekeeper-overview',
  title: 'Housekeeper / Overview',
  description: "The runbook's morning check: every target, database, cache, index, backup, log cluster and certificate, green or not.",
  targetSelector: 'housekeeper_collector_success',
  from: 'now-12h',
  variables: [labelVariable('instance', 'Host', 'node_uname_info', 'instance')],
  rows,
});

function rows(d: dashboard.DashboardBuilder): void {
  d.withRow(row('Targets'))
    .withPanel(
      stat('Collections failing', 'none', 'Collector/target pairs whose last collection failed or timed out (housekeeper_collector_success = 0). Any is red: that target\'s metrics are missing.')
        .withTarget(instant(`count(max by (collector, target) (housekeeper_collector_success${sel()}) == 0) or vector(0)`, 'failing'))
        .thresholds(zeroIsGood()),
    )
    .withPanel(collectionsStat('Targets', 'Every configured target, by collector: UP when its last collection succeeded.').span(20));

  d.withRow(row('Postgres, PgBouncer, Redis'))
    .withPanel(pgConnectionsStat('Postgres connections', `Client connections over the usable maximum (max_connections less reserved slots). Runbook: alert at ${percent(r.connections.warn)}.`))
    .withPanel(replicationLagStat('Replication lag', `Seconds since the last replayed transaction, on each replica. Runbook: under ${r.replicationLagSeconds.warn} s is healthy.`))
    .withPanel(longRunningQueriesStat('Long-running queries', `Client queries active for longer than ${r.longQuerySeconds} s, per server.`))
    .withPanel(pgbouncerClientsWaitingStat('PgBouncer clients waiting', 'Clients waiting for a server connection: the pool is too small or the database is slow.'))
    .withPanel(redisMemoryStat('Redis memory', `Used memory over maxmemory. Runbook: under ${percent(r.redisMemory.warn)}.`))
    .withPanel(redisHitRatioStat('Redis hit ratio', `Keyspace hits over lookups in the last ${r.hitRatioWindow}. Runbook: above ${percent(r.hitRatio.warn)}.`));

  d.withRow(row('Vector index, backups, Elasticsearch, certificates'))
    .withPanel(faissLoadableStat('FAISS index', 'Whether FAISS loads each index file (missing, truncated or corrupt: BROKEN; the runbook rebuilds it).'))
    .withPanel(
      faissRecallStat('FAISS recall@10', `Recall@10 against exact search; red under the default recall_floor (${percent(r.faissRecallFloorDefault)}); the alert uses each index's own floor.`),
    )
    .withPanel(
      newestBackupAgeStat('Newest backup age', `Age of the newest backup of each kind. Runbook: daily; alert after ${r.backupAgeSeconds.warn / HOUR} h, critical after ${r.backupAgeSeconds.crit / HOUR} h.`),
    )
    .withPanel(backupsVerifiedStat('Backups verified', 'Whether the newest backup of each kind passed verification (size, SHA-256, pg_restore --list).'))
    .withPanel(elasticsearchHealthStat('Elasticsearch', 'Cluster health colour.'))
    .withPanel(certificateDaysLeftStat('Certificate days left', `Days until the first certificate in each chain expires. Runbook: check ${r.certDays.warn} days ahead.`));

  d.withRow(row('Remediation'))
    .withPanel(openCircuitsStat('Open circuits', 'Rules whose circuit is open: they stopped acting after repeated failures, and a human must look.'))
    .withPanel(remediationsFailedStat('Remediations failed (24h)', 'Remediations that failed (critical) or ran without clearing the condition (warning), in the last 24 hours.', '24h'))
    .withPanel(remediationsFixedStat('Remediations fixed (24h)', 'Remediations that ran and cleared the condition, in the last 24 hours.', '24h'))
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
    .withPanel(hostUsageStat('CPU', 'CPU busy, per host.', r.cpu, instant(cpu, '{{instance}}')))
    .withPanel(hostUsageStat('Memory', 'Memory in use (not available), per host.', r.memory, instant(memory, '{{instance}}')))
    .withPanel(hostUsageStat('Disk', 'Fullest filesystem, per host.', r.disk, instant(disk, '{{instance}}')))
    .withPanel(
      hostUsageStat(
        'Network',
        "Busiest interface's traffic over its link speed, in and out, per host.",
        r.network,
        instant(network('receive'), '{{instance}} in'),
        instant(network('transmit'), '{{instance}} out'),
      ),
    )
    .withPanel(hostUsageGraph('CPU', 'CPU busy, per host.', r.cpu, cpu))
    .withPanel(hostUsageGraph('Memory', 'Memory in use, per host.', r.memory, memory))
    .withPanel(hostUsageGraph('Disk', 'Fullest filesystem, per host.', r.disk, disk));
}
