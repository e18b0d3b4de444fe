// PgBouncer pools and the Redis query cache: clients waiting, memory against maxmemory, hit
// ratio, evictions, restarts (a cold cache) and saves. pgbouncer_exporter's and
// redis_exporter's names.
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { pgbouncerClientsWaitingStat, redisHitRatioStat, redisMemoryStat } from './check-stats.ts';
import {
  defineDashboard,
  higherIsWorse,
  instant,
  lowerIsWorse,
  percent,
  query,
  redisHitRatio,
  redisMemoryRatio,
  row,
  sel,
  stacked,
  stat,
  steps,
  timeseries,
  upStat,
  withThresholdLines,
  yesNoStat,
} from './common.ts';
import { HOUR, runbook as r } from '../../src/runbook.ts';

export default defineDashboard({
  uid: 'housekeeper-pgbouncer-redis',
  title: 'Housekeeper / PgBouncer and Redis',
  description: 'PgBouncer pools (clients waiting, server connections, query rates) and the Redis cache (memory, hit ratio, evictions, restarts, saves).',
  targetSelector: '{__name__=~"pgbouncer_up|redis_up"}',
  tags: ['pgbouncer', 'redis'],
  rows,
});

function rows(d: dashboard.DashboardBuilder): void {
  const s = sel();

  d.withRow(row('PgBouncer'))
    .withPanel(upStat('PgBouncer', 'Whether the admin console answered (pgbouncer_up).').span(6).withTarget(instant(`max by (target) (pgbouncer_up${s})`, '{{target}}')))
    .withPanel(pgbouncerClientsWaitingStat('Clients waiting', 'Clients waiting for a server connection (pgbouncer-pool-resize acts on it).').span(6))
    .withPanel(
      stat('Longest wait', 's', 'How long the oldest waiting client has waited (any client waiting for 2 minutes is an alert).')
        .span(6)
        .withTarget(instant(`max by (target) (pgbouncer_pools_client_maxwait_seconds${s})`, '{{target}}'))
        .thresholds(steps('green', [1, 'yellow'])),
    )
    .withPanel(
      stat('Client connections', 'percentunit', 'Client connections over max_client_conn (no alert; coloured at the Postgres connection levels).')
        .span(6)
        .withTarget(
          instant(
            `max by (target) (sum by (target, instance) (pgbouncer_pools_client_active_connections${s} + pgbouncer_pools_client_waiting_connections${s}) / on (target, instance) pgbouncer_config_max_client_connections${s})`,
            '{{target}}',
          ),
        )
        .thresholds(higherIsWorse(r.connections.warn, r.connections.crit))
        .decimals(0),
    )
    .withPanel(
      timeseries('Clients', 'short', 'Client connections linked to a server (active) and waiting for one, per database.')
        .withTarget(query(`max by (target, database) (pgbouncer_pools_client_active_connections${s})`, '{{target}} {{database}} active'))
        .withTarget(query(`max by (target, database) (pgbouncer_pools_client_waiting_connections${s})`, '{{target}} {{database}} waiting')),
    )
    .withPanel(
      timeseries('Server connections', 'short', 'Server connections by state, against each database\'s pool size.')
        .stacking(stacked())
        .fillOpacity(40)
        .withTarget(query(`sum by (target) (max by (target, database, user) (pgbouncer_pools_server_active_connections${s}))`, '{{target}} active'))
        .withTarget(query(`sum by (target) (max by (target, database, user) (pgbouncer_pools_server_idle_connections${s}))`, '{{target}} idle'))
        .withTarget(query(`sum by (target) (max by (target, database, user) (pgbouncer_pools_server_used_connections${s}))`, '{{target}} used'))
        .withTarget(query(`sum by (target) (max by (target, database, user) (pgbouncer_pools_server_testing_connections${s} + pgbouncer_pools_server_login_connections${s}))`, '{{target}} testing/login')),
    )
    .withPanel(
      timeseries('Queries', 'ops', 'SQL queries pooled per second, per database.')
        .withTarget(query(`max by (target, database) (rate(pgbouncer_stats_queries_pooled_total${s}[$__rate_interval]))`, '{{target}} {{database}}')),
    )
    .withPanel(
      timeseries('Average query time and client wait', 's', 'Mean query duration, and time clients spent waiting for a server per second.')
        .withTarget(
          query(
            `max by (target, database) (rate(pgbouncer_stats_queries_duration_seconds_total${s}[$__rate_interval]) / (rate(pgbouncer_stats_queries_pooled_total${s}[$__rate_interval]) > 0))`,
            '{{target}} {{database}} query',
          ),
        )
        .withTarget(query(`max by (target, database) (rate(pgbouncer_stats_client_wait_seconds_total${s}[$__rate_interval]))`, '{{target}} {{database}} wait/s')),
    );

  d.withRow(row('Redis'))
    .withPanel(upStat('Redis', 'Whether the server answered (redis_up).').withTarget(instant(`max by (target) (redis_up${s})`, '{{target}}')))
    .withPanel(redisMemoryStat('Memory', `Used memory over maxmemory. Runbook: under ${percent(r.redisMemory.warn)} (redis-flush acts above it).`))
    .withPanel(redisHitRatioStat('Hit ratio', `Keyspace hits over lookups in the last ${r.hitRatioWindow}. Runbook: above ${percent(r.hitRatio.warn)}.`))
    .withPanel(
      stat('Uptime', 's', `Time since the server started: a restart empties the cache (redis-warm refills it); yellow for the first ${r.redisRestartedSeconds / 60} minutes.`)
        .withTarget(instant(`min by (target) (redis_uptime_in_seconds${s})`, '{{target}}'))
        .thresholds(steps('yellow', [r.redisRestartedSeconds, 'green'])),
    )
    .withPanel(
      stat('Last save', 's', `Time since the last successful RDB save; the alert fires after ${r.redisLastSaveSeconds / HOUR} h with writes pending.`)
        .withTarget(instant(`time() - max by (target) (redis_rdb_last_save_timestamp_seconds${s})`, '{{target}}'))
        .thresholds(steps('green', [r.redisLastSaveSeconds, 'yellow'])),
    )
    .withPanel(
      yesNoStat('Last background save', 'Whether the last background save succeeded.', 'OK', 'FAILED', 'yellow').withTarget(instant(`min by (target) (redis_rdb_last_bgsave_status${s})`, '{{target}}')),
    )
    .withPanel(
      withThresholdLines(timeseries('Memory used', 'percentunit', 'Used memory over maxmemory.').min(0).max(1), higherIsWorse(r.redisMemory.warn, r.redisMemory.crit))
        .withTarget(query(redisMemoryRatio(), '{{target}}')),
    )
    .withPanel(
      withThresholdLines(timeseries('Hit ratio', 'percentunit', `Keyspace hits over lookups. Runbook: above ${percent(r.hitRatio.warn)}.`).min(0).max(1), lowerIsWorse(r.hitRatio.warn))
        .withTarget(query(redisHitRatio('$__rate_interval'), '{{target}}')),
    )
    .withPanel(
      timeseries('Evictions and expiries', 'ops', 'Keys evicted because of maxmemory (any, for 10 minutes, is an alert), and keys expired, per second.')
        .withTarget(query(`max by (target) (rate(redis_evicted_keys_total${s}[$__rate_interval]))`, '{{target}} evicted'))
        .withTarget(query(`max by (target) (rate(redis_expired_keys_total${s}[$__rate_interval]))`, '{{target}} expired')),
    )
    .withPanel(
      timeseries('Commands', 'ops', 'Commands processed per second.').withTarget(query(`max by (target) (rate(redis_commands_processed_total${s}[$__rate_interval]))`, '{{target}}')),
    )
    .withPanel(
      timeseries('Keys', 'short', 'Keys per database, and how many of them expire.')
        .withTarget(query(`max by (target, db) (redis_db_keys${s})`, '{{target}} {{db}}'))
        .withTarget(query(`max by (target, db) (redis_db_keys_expiring${s})`, '{{target}} {{db}} expiring')),
    )
    .withPanel(
      timeseries('Clients', 'short', 'Connected and blocked clients, and connections rejected per second (maxclients).')
        .withTarget(query(`max by (target) (redis_connected_clients${s})`, '{{target}} connected'))
        .withTarget(query(`max by (target) (redis_blocked_clients${s})`, '{{target}} blocked'))
        .withTarget(query(`max by (target) (rate(redis_rejected_connections_total${s}[$__rate_interval]))`, '{{target}} rejected/s')),
    )
    .withPanel(
      timeseries('Fragmentation', 'short', 'RSS over allocated memory: well above 1.5 means memory is fragmented.')
        .withTarget(query(`max by (target) (redis_mem_fragmentation_ratio${s})`, '{{target}}')),
    )
    .withPanel(
      timeseries('Slow log', 'short', 'Entries in the slow log.').withTarget(query(`max by (target) (redis_slowlog_length${s})`, '{{target}}')),
    );
}
