import { createHash } from 'node:crypto';
import type pg from 'pg';
import * as sql from '../sql/postgres.ts';
import type { PgTarget } from '../targets/postgres.ts';
import type { MetricFactory } from '../metrics/registry.ts';
import { defineCollector, type CollectContext } from './collector.ts';

// Postgres primary and replicas. Names and labels follow postgres_exporter where it has the
// metric, so community dashboards work; pg_long_running_queries*, pg_blocked_sessions and the
// top-N limits are housekeeper's own.

function declare(f: MetricFactory) {
  const g = f.gauge.bind(f);
  const c = f.counter.bind(f);
  return {
    up: g('pg_up', 'Whether the last connection to the Postgres server succeeded (1) or not (0).'),
    maxConnections: g('pg_settings_max_connections', 'Server setting max_connections.'),
    superuserReserved: g('pg_settings_superuser_reserved_connections', 'Server setting superuser_reserved_connections.'),
    reserved: g('pg_settings_reserved_connections', 'Server setting reserved_connections (Postgres 16 and later).'),
    isReplica: g('pg_replication_is_replica', 'Whether the server is a replica in recovery (1) or a primary (0).'),
    lag: g('pg_replication_lag_seconds', 'On a replica: seconds since the last replayed transaction, 0 when all received WAL is replayed.'),
    activity: g('pg_stat_activity_count', 'Connections per database and state.', ['datname', 'state']),
    maxTx: g('pg_stat_activity_max_tx_duration', 'Longest open transaction per database and state, in seconds.', ['datname', 'state']),
    longCount: g('pg_long_running_queries', 'Client queries active for longer than the threshold, per database.', ['datname']),
    longMax: g('pg_long_running_queries_max_seconds', 'Age of the longest query over the threshold, per database (0 when none).', ['datname']),
    longThreshold: g('pg_long_running_queries_threshold_seconds', 'The threshold behind pg_long_running_queries.'),
    blocked: g('pg_blocked_sessions', 'Client sessions waiting for a heavyweight lock, per database.', ['datname']),
    locks: g('pg_locks_count', 'Locks held or awaited per database and mode.', ['datname', 'mode']),
    deadlocks: c('pg_stat_database_deadlocks', 'Deadlocks detected in this database.', ['datname']),
    commits: c('pg_stat_database_xact_commit', 'Transactions committed in this database.', ['datname']),
    rollbacks: c('pg_stat_database_xact_rollback', 'Transactions rolled back in this database.', ['datname']),
    blksHit: c('pg_stat_database_blks_hit', 'Disk blocks found in the buffer cache.', ['datname']),
    blksRead: c('pg_stat_database_blks_read', 'Disk blocks read.', ['datname']),
    conflicts: c('pg_stat_database_conflicts', 'Queries cancelled by recovery conflicts (replicas).', ['datname']),
    tempBytes: c('pg_stat_database_temp_bytes', 'Bytes written to temporary files.', ['datname']),
    dbSize: g('pg_database_size_bytes', 'Disk space used by the database.', ['datname']),
    frozenAge: g('pg_database_wraparound_age_datfrozenxid', 'Age of the oldest unfrozen transaction ID (wraparound at 2^31).', ['datname']),
    minmxAge: g('pg_database_wraparound_age_datminmxid', 'Age of the oldest multixact ID.', ['datname']),
    replicaLagBytes: g('pg_stat_replication_pg_wal_lsn_diff', 'On a primary: bytes of WAL each replica has yet to replay.', ['application_name', 'client_addr', 'state']),
    replicaLagSeconds: g('pg_stat_replication_replay_lag_seconds', 'On a primary: replay lag each replica reports, in seconds.', ['application_name', 'client_addr', 'state']),
    liveTup: g('pg_stat_user_tables_n_live_tup', 'Estimated live rows (top tables by dead rows).', TABLE_LABELS),
    deadTup: g('pg_stat_user_tables_n_dead_tup', 'Estimated dead rows (top tables by dead rows).', TABLE_LABELS),
    lastVacuum: g('pg_stat_user_tables_last_vacuum', 'Last manual vacuum, seconds since epoch (0: never).', TABLE_LABELS),
    lastAutovacuum: g('pg_stat_user_tables_last_autovacuum', 'Last autovacuum, seconds since epoch (0: never).', TABLE_LABELS),
    lastAnalyze: g('pg_stat_user_tables_last_analyze', 'Last manual analyze, seconds since epoch (0: never).', TABLE_LABELS),
    lastAutoanalyze: g('pg_stat_user_tables_last_autoanalyze', 'Last autoanalyze, seconds since epoch (0: never).', TABLE_LABELS),
    vacuumCount: c('pg_stat_user_tables_vacuum_count', 'Manual vacuums of this table.', TABLE_LABELS),
    autovacuumCount: c('pg_stat_user_tables_autovacuum_count', 'Autovacuums of this table.', TABLE_LABELS),
    tableSize: g('pg_stat_user_tables_table_size_bytes', 'Table size without indexes.', TABLE_LABELS),
    indexSize: g('pg_stat_user_tables_index_size_bytes', 'Size of the table\'s indexes.', TABLE_LABELS),
    tables: g('pg_stat_user_tables_count', 'User tables in the connected database (the table metrics cover the top N by dead rows).', ['datname']),
    statementsEnabled: g('pg_stat_statements_enabled', 'Whether pg_stat_statements is installed in the connected database (1) or not (0).'),
    stCalls: c('pg_stat_statements_calls_total', 'Calls of the statement (top N by mean time).', STATEMENT_LABELS),
    stSeconds: c('pg_stat_statements_seconds_total', 'Total execution time of the statement, seconds (top N by mean time).', STATEMENT_LABELS),
    stMean: g('pg_stat_statements_mean_seconds', 'Mean execution time of the statement, seconds (top N by mean time).', STATEMENT_LABELS),
    stRows: c('pg_stat_statements_rows_total', 'Rows returned or affected by the statement (top N by mean time).', STATEMENT_LABELS),
  };
}
const TABLE_LABELS = ['datname', 'schemaname', 'relname'];
const STATEMENT_LABELS = ['queryid', 'datname', 'user'];

type Metrics = ReturnType<typeof declare>;
type Row = Record<string, unknown>;

// Statements are prepared (named) once per connection: parsing, rewriting and planning
// COLLECT, which expands a dozen catalog views, takes longer than running it (bench/README.md).
// A named statement needs the server connection to stay the client's: behind a pooler in
// transaction mode the next execution can land where the statement does not exist (26000)
// or where another client prepared the same name (42P05). Such a target falls back to
// unnamed statements for the life of the process. The name carries a hash of the text, so
// two versions of housekeeper sharing a server connection never run each other's statement.
const PREPARED_UNSUPPORTED = new Set(['26000', '42P05']);
const statementName = (what: string, text: string): string => `housekeeper_${what}_${createHash('sha256').update(text).digest('hex').slice(0, 12)}`;
const COLLECT_NAME = statementName('collect', sql.COLLECT);
const TOP_STATEMENTS_NAME = statementName('top_statements', sql.TOP_STATEMENTS);
const unnamedOnly = new WeakSet<PgTarget>();

async function rows(ctx: CollectContext<PgTarget>, client: pg.PoolClient, name: string, text: string, values: unknown[]): Promise<Row[]> {
  if (!unnamedOnly.has(ctx.target)) {
    try {
      return (await client.query<Row>({ name, text, values })).rows;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !PREPARED_UNSUPPORTED.has(code)) throw err;
      unnamedOnly.add(ctx.target);
      ctx.log.info({ target: ctx.target.name, code }, 'prepared statements do not survive on this connection (a pooler in transaction mode?); using unnamed ones');
    }
  }
  return (await client.query<Row>(text, values)).rows;
}
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
/** One part of sql.COLLECT's row: its rows, parsed from JSON by pg. */
const part = (row: Row | undefined, name: string): Row[] => {
  const v = row?.[name];
  if (!Array.isArray(v)) throw new Error(`postgres collector: part ${name} missing from the result`);
  return v as Row[];
};

export default defineCollector<PgTarget, Metrics>({
  name: 'postgres',
  enabledByDefault: true,
  targets: (t) => t.postgres,
  metrics: declare,
  up: (m) => m.up,
  async collect(ctx: CollectContext<PgTarget>, m, config) {
    const opts = config.collectors.postgres;
    await ctx.target.use(ctx.signal, async (client) => {
      const set = ctx.set;
      // One round trip for everything but pg_stat_statements (see src/sql/postgres.ts).
      const [all] = await rows(ctx, client, COLLECT_NAME, sql.COLLECT, [opts.longQueryThresholdMs / 1000, opts.topTables]);
      const srv = all?.['server'] as Row | null | undefined;
      if (!srv) throw new Error('postgres collector: no server row');
      set(m.maxConnections, {}, num(srv['max_connections']));
      set(m.superuserReserved, {}, num(srv['superuser_reserved_connections']));
      if (srv['reserved_connections'] !== null && srv['reserved_connections'] !== undefined) {
        set(m.reserved, {}, num(srv['reserved_connections']));
      }
      const isReplica = srv['is_replica'] === true;
      set(m.isReplica, {}, isReplica ? 1 : 0);
      set(m.lag, {}, num(srv['lag_seconds'] ?? 0));

      for (const r of part(all, 'activity')) {
        const l = { datname: str(r['datname']), state: str(r['state']) };
        set(m.activity, l, num(r['count']));
        set(m.maxTx, l, num(r['max_tx_seconds']));
      }
      set(m.longThreshold, {}, opts.longQueryThresholdMs / 1000);
      for (const r of part(all, 'long_and_blocked')) {
        const l = { datname: str(r['datname']) };
        set(m.longCount, l, num(r['long_count']));
        set(m.longMax, l, num(r['long_max_seconds']));
        set(m.blocked, l, num(r['blocked']));
      }
      for (const r of part(all, 'locks')) {
        set(m.locks, { datname: str(r['datname']), mode: str(r['mode']) }, num(r['count']));
      }
      for (const r of part(all, 'databases')) {
        const l = { datname: str(r['datname']) };
        set(m.deadlocks, l, num(r['deadlocks']));
        set(m.commits, l, num(r['xact_commit']));
        set(m.rollbacks, l, num(r['xact_rollback']));
        set(m.blksHit, l, num(r['blks_hit']));
        set(m.blksRead, l, num(r['blks_read']));
        set(m.conflicts, l, num(r['conflicts']));
        set(m.tempBytes, l, num(r['temp_bytes']));
        set(m.dbSize, l, num(r['size_bytes']));
        set(m.frozenAge, l, num(r['frozenxid_age']));
        set(m.minmxAge, l, num(r['minmxid_age']));
      }
      // Empty on a replica (the part's WHERE NOT pg_is_in_recovery()).
      for (const r of part(all, 'replicas')) {
        const l = { application_name: str(r['application_name']), client_addr: str(r['client_addr']), state: str(r['state']) };
        set(m.replicaLagBytes, l, num(r['lag_bytes']));
        set(m.replicaLagSeconds, l, num(r['replay_lag_seconds']));
      }
      for (const r of part(all, 'tables')) {
        const l = { datname: str(r['datname']), schemaname: str(r['schemaname']), relname: str(r['relname']) };
        set(m.liveTup, l, num(r['n_live_tup']));
        set(m.deadTup, l, num(r['n_dead_tup']));
        set(m.lastVacuum, l, num(r['last_vacuum']));
        set(m.lastAutovacuum, l, num(r['last_autovacuum']));
        set(m.lastAnalyze, l, num(r['last_analyze']));
        set(m.lastAutoanalyze, l, num(r['last_autoanalyze']));
        set(m.vacuumCount, l, num(r['vacuum_count']));
        set(m.autovacuumCount, l, num(r['autovacuum_count']));
        set(m.tableSize, l, num(r['table_size_bytes']));
        set(m.indexSize, l, num(r['index_size_bytes']));
      }
      set(m.tables, { datname: str(srv['datname']) }, num(srv['table_count'] ?? 0));

      // pg_stat_statements is optional: absent (or installed but not preloaded, when its
      // view raises) means enabled=0 and no statement series: "no data", not a failure.
      let top: Row[] | undefined;
      if (srv['statements_installed'] === true) {
        try {
          top = await rows(ctx, client, TOP_STATEMENTS_NAME, sql.TOP_STATEMENTS, [opts.topStatements]);
        } catch (err) {
          ctx.log.debug({ target: ctx.target.name, err }, 'pg_stat_statements not readable');
        }
      }
      set(m.statementsEnabled, {}, top === undefined ? 0 : 1);
      for (const r of top ?? []) {
        const l = { queryid: str(r['queryid']), datname: str(r['datname']), user: str(r['usename']) };
        set(m.stCalls, l, num(r['calls']));
        set(m.stSeconds, l, num(r['total_seconds']));
        set(m.stMean, l, num(r['mean_seconds']));
        set(m.stRows, l, num(r['rows']));
      }
    });
  },
});
