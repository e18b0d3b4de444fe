// Postgres primary and replicas: connections against the usable maximum, long-running and
// blocked queries, replication, dead tuples and vacuum, statements. postgres_exporter's names.
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { longRunningQueriesStat, pgConnectionsStat, replicationLagStat } from './check-stats.ts';
import {
  columns,
  columnUnit,
  defineDashboard,
  higherIsWorse,
  instant,
  pgConnectionsRatio,
  pgReplicationLag,
  query,
  row,
  sel,
  stacked,
  stat,
  steps,
  table,
  tableQuery,
  timeseries,
  upStat,
  valueText,
  yesNoStat,
  withThresholdLines,
  zeroIsGood,
} from './common.ts';
import { DAY, runbook as r } from '../../src/runbook.ts';

export default defineDashboard({
  uid: 'housekeeper-postgres',
  title: 'Housekeeper / Postgres',
  description: 'Postgres primary and replicas: connections, long-running and blocked queries, replication, dead tuples and vacuum, top statements.',
  targetSelector: 'pg_up',
  tags: ['postgres'],
  rows,
});

function rows(d: dashboard.DashboardBuilder): void {
  const s = sel();

  d.withRow(row('Health'))
    .withPanel(upStat('Server', 'Whether housekeeper could connect (pg_up).').withTarget(instant(`max by (target) (pg_up${s})`, '{{target}}')))
    .withPanel(
      stat('Role', 'none', 'Primary or replica (in recovery).')
        .withTarget(instant(`max by (target) (pg_replication_is_replica${s})`, '{{target}}'))
        .mappings(valueText({ '0': ['PRIMARY', 'blue'], '1': ['REPLICA', 'blue'] }))
        .thresholds(steps('blue')),
    )
    .withPanel(pgConnectionsStat('Connections', `Client connections over the usable maximum. Runbook: alert at ${r.connections.warn * 100}%.`))
    .withPanel(replicationLagStat('Replication lag', `On replicas: seconds since the last replayed transaction. Runbook: under ${r.replicationLagSeconds.warn} s.`))
    .withPanel(longRunningQueriesStat('Long-running queries', `Client queries active for longer than ${r.longQuerySeconds} s.`))
    .withPanel(
      stat('Blocked sessions', 'none', 'Client sessions waiting for a heavyweight lock.')
        .withTarget(instant(`sum by (target) (max by (target, datname) (pg_blocked_sessions${s}))`, '{{target}}'))
        .thresholds(zeroIsGood('yellow')),
    );

  d.withRow(row('Connections'))
    .withPanel(
      withThresholdLines(timeseries('Connections used', 'percentunit', 'Client connections over the usable maximum (max_connections less reserved slots).').min(0), higherIsWorse(r.connections.warn, r.connections.crit))
        .withTarget(query(pgConnectionsRatio(), '{{target}}')),
    )
    .withPanel(
      timeseries('Connections by state', 'short', 'Client connections per state (active, idle, idle in transaction, ...).')
        .stacking(stacked())
        .fillOpacity(40)
        .withTarget(query(`sum by (target, state) (max by (target, datname, state) (pg_stat_activity_count${s}))`, '{{target}} {{state}}')),
    )
    .withPanel(
      withThresholdLines(
        timeseries('Longest open transaction', 's', `Longest open transaction per state: one idle in transaction for over ${r.idleInTransactionSeconds / 60} minutes holds locks and blocks vacuum (pg-terminate-idle-in-transaction acts on it).`).min(0),
        higherIsWorse(r.idleInTransactionSeconds),
      ).withTarget(query(`max by (target, state) (pg_stat_activity_max_tx_duration${s})`, '{{target}} {{state}}')),
    )
    .withPanel(
      timeseries('Transactions', 'ops', 'Commits and rollbacks per second.')
        .withTarget(query(`sum by (target) (max by (target, datname) (rate(pg_stat_database_xact_commit${s}[$__rate_interval])))`, '{{target}} commit'))
        .withTarget(query(`sum by (target) (max by (target, datname) (rate(pg_stat_database_xact_rollback${s}[$__rate_interval])))`, '{{target}} rollback')),
    );

  d.withRow(row('Queries and locks'))
    .withPanel(
      timeseries('Long-running queries', 'short', `Client queries active for longer than ${r.longQuerySeconds} s (pg-cancel-long-queries acts on them).`)
        .withTarget(query(`max by (target, datname) (pg_long_running_queries${s})`, '{{target}} {{datname}}')),
    )
    .withPanel(
      withThresholdLines(timeseries('Longest query', 's', `Age of the longest query over the threshold (${r.longQuerySeconds} s).`).min(0), higherIsWorse(r.longQuerySeconds))
        .withTarget(query(`max by (target, datname) (pg_long_running_queries_max_seconds${s})`, '{{target}} {{datname}}')),
    )
    .withPanel(
      timeseries('Blocked sessions and deadlocks', 'short', 'Sessions waiting for a lock, and deadlocks per second.')
        .withTarget(query(`max by (target, datname) (pg_blocked_sessions${s})`, '{{target}} {{datname}} blocked'))
        .withTarget(query(`max by (target, datname) (rate(pg_stat_database_deadlocks${s}[$__rate_interval]))`, '{{target}} {{datname}} deadlocks/s')),
    )
    .withPanel(
      timeseries('Locks by mode', 'short', 'Locks held or awaited, by mode.')
        .withTarget(query(`sum by (target, mode) (max by (target, datname, mode) (pg_locks_count${s}))`, '{{target}} {{mode}}')),
    );

  d.withRow(row('Replication'))
    .withPanel(
      withThresholdLines(timeseries('Replica lag', 's', `Seconds since the last replayed transaction, on each replica. Runbook: under ${r.replicationLagSeconds.warn} s.`).min(0), higherIsWorse(r.replicationLagSeconds.warn))
        .withTarget(query(pgReplicationLag(), '{{target}}')),
    )
    .withPanel(
      timeseries('Replay lag seen by the primary', 'bytes', 'On the primary: bytes of WAL each replica has yet to replay.')
        .withTarget(query(`max by (target, application_name, client_addr) (pg_stat_replication_pg_wal_lsn_diff${s})`, '{{target}} → {{application_name}} {{client_addr}}')),
    );

  d.withRow(row('Storage and vacuum'))
    .withPanel(
      timeseries('Cache hit ratio', 'percentunit', 'Buffer cache hits over block reads and hits.')
        .min(0)
        .max(1)
        .withTarget(
          query(
            `max by (target, datname) (rate(pg_stat_database_blks_hit${s}[$__rate_interval]) / ((rate(pg_stat_database_blks_hit${s}[$__rate_interval]) + rate(pg_stat_database_blks_read${s}[$__rate_interval])) > 0))`,
            '{{target}} {{datname}}',
          ),
        ),
    )
    .withPanel(
      timeseries('Database size', 'bytes', 'Disk space used by each database.').withTarget(query(`max by (target, datname) (pg_database_size_bytes${s})`, '{{target}} {{datname}}')),
    )
    .withPanel(
      timeseries('Dead tuples', 'short', 'Estimated dead rows in the tables with the most (pg-vacuum acts on them).')
        .withTarget(query(`topk(10, max by (target, datname, schemaname, relname) (pg_stat_user_tables_n_dead_tup${s}))`, '{{target}} {{schemaname}}.{{relname}}')),
    )
    .withPanel(
      withThresholdLines(timeseries('Transaction ID age', 'short', 'Age of the oldest unfrozen transaction ID; wraparound at 2^31, autovacuum forces a freeze at 200M by default.').min(0), higherIsWorse(200_000_000, 1_000_000_000))
        .withTarget(query(`max by (target, datname) (pg_database_wraparound_age_datfrozenxid${s})`, '{{target}} {{datname}}')),
    )
    .withPanel(
      columnUnit(
        columns(
          table('Tables with the most dead rows', 'short', `Top tables by dead rows (the collector keeps the top N): dead and live rows, dead share (alert over ${r.deadTupleRatio * 100}% with over 10000 dead; pg-vacuum acts on it), time since the last vacuum or autovacuum.`)
            .withTarget(tableQuery(`topk(20, max by (target, datname, schemaname, relname) (pg_stat_user_tables_n_dead_tup${s}))`).refId('dead'))
            .withTarget(tableQuery(`max by (target, datname, schemaname, relname) (pg_stat_user_tables_n_live_tup${s})`).refId('live'))
            .withTarget(
              tableQuery(
                `max by (target, datname, schemaname, relname) (pg_stat_user_tables_n_dead_tup${s} / ((pg_stat_user_tables_n_live_tup${s} + pg_stat_user_tables_n_dead_tup${s}) > 0))`,
              ).refId('share'),
            )
            .withTarget(
              tableQuery(
                `time() - max by (target, datname, schemaname, relname) ((pg_stat_user_tables_last_autovacuum${s} > pg_stat_user_tables_last_vacuum${s}) or pg_stat_user_tables_last_vacuum${s})`,
              ).refId('vacuumed'),
            ),
          { rename: { 'Value #dead': 'dead rows', 'Value #live': 'live rows', 'Value #share': 'dead share', 'Value #vacuumed': 'since vacuum' }, sort: { field: 'dead rows', desc: true } },
        ),
        'since vacuum',
        's',
      )
        .overrideByName('dead share', [
          { id: 'unit', value: 'percentunit' },
          { id: 'thresholds', value: higherIsWorse(r.deadTupleRatio).build() },
          { id: 'custom.cellOptions', value: { type: 'color-background' } },
        ]),
    );

  d.withRow(row('Retention (cleanup and archive)'))
    .withPanel(
      stat('Oldest row past retention', 's', `How far the oldest row of each actions.cleanup / actions.archive entry is past its older_than (runbook: chat logs 90 days, conversations 30 days). The Monday job keeps it under a week; the alert fires after ${r.retentionGraceSeconds / DAY} days (cleanup-old-rows / archive-old-rows act on it).`)
        .withTarget(
          instant(`clamp_min(max by (target, kind, entry) (pg_retention_oldest_row_age_seconds${s} - pg_retention_max_age_seconds${s}), 0)`, '{{target}} {{kind}} {{entry}}'),
        )
        .thresholds(steps('green', [r.retentionGraceSeconds, 'yellow']))
        .decimals(1)
        .span(8),
    )
    .withPanel(
      yesNoStat('Retention checks', 'Whether each entry\'s table and time column were found and read (0: no such table or column, not a time type, no SELECT; the log says which).', 'OK', 'FAILING')
        .withTarget(instant(`min by (target, kind, entry) (pg_retention_check_success${s})`, '{{target}} {{kind}} {{entry}}'))
        .span(4),
    );

  d.withRow(row('Statements (pg_stat_statements)'))
    .withPanel(
      columnUnit(
        columns(
          table('Slowest statements', 's', 'Top statements by mean time (needs pg_stat_statements; the collector keeps the top N); queryid names the statement in pg_stat_statements.')
            .withTarget(tableQuery(`topk(20, max by (target, queryid, datname, user) (pg_stat_statements_mean_seconds${s}))`).refId('mean'))
            .withTarget(tableQuery(`max by (target, queryid, datname, user) (rate(pg_stat_statements_calls_total${s}[1h]))`).refId('calls')),
          { rename: { 'Value #mean': 'mean time', 'Value #calls': 'calls/s (1h)' }, sort: { field: 'mean time', desc: true } },
        ),
        'calls/s (1h)',
        'ops',
      ),
    );
}
