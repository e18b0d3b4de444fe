import { createHash } from 'node:crypto';
import type pg from 'pg';
import * as sql from '../sql/postgres.ts';
import type { PgTarget } from '../targets/postgres.ts';
import type { Family, MetricFactory } from '../metrics/registry.ts';
import { num, str } from '../util/values.ts';
import { defineCollector, type CollectContext, type LabelValues } from './collector.ts';
import { declareSettings, settingUnit, settingValue } from './postgres-settings.ts';

// Postgres primary and replicas. Names, labels and types follow postgres_exporter 0.11 (its
// default collectors and Debian's example queries.yaml) where it has the metric, so community
// dashboards and alerts work unchanged (test/postgres.test.ts compares with the binary);
// pg_long_running_queries*, pg_blocked_sessions, the wraparound ages and the top-N limits are
// housekeeper's own. pg_settings_* are declared in postgres-settings.ts.

// Every family but pg_up and pg_exporter_last_scrape_error carries `server` (host:port of
// the connection), as postgres_exporter 0.11 labels its families; housekeeper's own
// families carry it too, so joins between them and the anchor's match on the same labels.
function declare(f: MetricFactory) {
  const g = (name: string, help: string, labels: readonly string[] = []) => f.gauge(name, help, ['server', ...labels]);
  const c = (name: string, help: string, labels: readonly string[] = []) => f.counter(name, help, ['server', ...labels]);
  return {
    up: f.gauge('pg_up', 'Whether the last connection to the Postgres server succeeded (1) or not (0).'),
    scrapeError: f.gauge(
      'pg_exporter_last_scrape_error',
      'Whether part of the last collection failed while the rest was served (1) or not (0); a failed collection shows as pg_up 0.',
    ),
    static: g('pg_static', 'Version string as reported by Postgres.', ['version', 'short_version']),
    startTime: g('pg_postmaster_start_time_seconds', 'Time at which postmaster started'),
    settings: declareSettings(f, ['server']),
    reserved: g('pg_settings_reserved_connections', 'Server setting reserved_connections (Postgres 16 and later).'),
    isReplica: g('pg_replication_is_replica', 'Whether the server is a replica in recovery (1) or a primary (0).'),
    lag: g('pg_replication_lag_seconds', 'On a replica: seconds since the last replayed transaction, 0 when all received WAL is replayed.'),
    lagLegacy: g('pg_replication_lag', 'The same value as pg_replication_lag_seconds, under the name of postgres_exporter\'s example queries.yaml.'),
    activity: g('pg_stat_activity_count', 'Connections per database and state.', ['datname', 'state']),
    maxTx: g('pg_stat_activity_max_tx_duration', 'Longest open transaction per database and state, in seconds.', ['datname', 'state']),
    longCount: g('pg_long_running_queries', 'Client queries active for longer than the threshold, per database.', ['datname']),
    longMax: g('pg_long_running_queries_max_seconds', 'Age of the longest query over the threshold, per database (0 when none).', ['datname']),
    longThreshold: g('pg_long_running_queries_threshold_seconds', 'The threshold behind pg_long_running_queries.'),
    blocked: g('pg_blocked_sessions', 'Client sessions waiting for a heavyweight lock, per database.', ['datname']),
    locks: g('pg_locks_count', 'Locks held or awaited per database and mode.', ['datname', 'mode']),
    statDatabase: declareStatDatabase(g, c),
    dbSize: g('pg_database_size_bytes', 'Disk space used by the database.', ['datname']),
    frozenAge: g('pg_database_wraparound_age_datfrozenxid', 'Age of the oldest unfrozen transaction ID (wraparound at 2^31).', ['datname']),
    minmxAge: g('pg_database_wraparound_age_datminmxid', 'Age of the oldest multixact ID.', ['datname']),
    tables: g('pg_database_user_tables', 'User tables in the connected database (the pg_stat_user_tables_* families cover the top N by dead rows).', ['datname']),
    bgwriter: declareColumns(c, 'pg_stat_bgwriter_', [], BGWRITER_COLUMNS),
    archiver: declareColumns(c, 'pg_stat_archiver_', [], ARCHIVER_COUNTERS),
    archiveAge: g('pg_stat_archiver_last_archive_age', 'Time in seconds since last WAL segment was successfully archived (NaN: never).'),
    slotActive: g('pg_replication_slots_active', 'Flag indicating if the slot is active', SLOT_LABELS),
    slotLag: g('pg_replication_slots_pg_wal_lsn_diff', 'Replication lag in bytes (WAL the slot holds back; NaN until it has a restart_lsn)', SLOT_LABELS),
    replicaLagBytes: g('pg_stat_replication_pg_wal_lsn_diff', 'On a primary: bytes of WAL each replica has yet to replay.', REPLICATION_LABELS),
    replicaLagSeconds: g('pg_stat_replication_replay_lag_seconds', 'On a primary: replay lag each replica reports, in seconds.', REPLICATION_LABELS),
    replicaWalBytes: g('pg_stat_replication_pg_current_wal_lsn_bytes', 'On a primary: its WAL position in bytes, per replica row.', REPLICATION_LABELS),
    replicaReplyTime: g('pg_stat_replication_reply_time', 'On a primary: when each replica last replied, seconds since epoch.', REPLICATION_LABELS),
    userTables: declareColumns(g, 'pg_stat_user_tables_', TABLE_LABELS, USER_TABLE_GAUGES),
    userTableCounters: declareColumns(c, 'pg_stat_user_tables_', TABLE_LABELS, USER_TABLE_COUNTERS),
    statio: declareColumns(c, 'pg_statio_user_tables_', TABLE_LABELS, STATIO_COLUMNS),
    statementsEnabled: g('pg_stat_statements_enabled', 'Whether pg_stat_statements is installed in the connected database (1) or not (0).'),
    stCalls: c('pg_stat_statements_calls_total', 'Calls of the statement (top N by mean time).', STATEMENT_LABELS),
    stSeconds: c('pg_stat_statements_seconds_total', 'Total execution time of the statement, seconds (top N by mean time).', STATEMENT_LABELS),
    stMean: g('pg_stat_statements_mean_seconds', 'Mean execution time of the statement, seconds (top N by mean time).', STATEMENT_LABELS),
    stRows: c('pg_stat_statements_rows_total', 'Rows returned or affected by the statement (top N by mean time).', STATEMENT_LABELS),
  };
}
const TABLE_LABELS = ['datname', 'schemaname', 'relname'];
const STATEMENT_LABELS = ['queryid', 'datname', 'user'];
const SLOT_LABELS = ['slot_name', 'database'];
const REPLICATION_LABELS = ['application_name', 'client_addr', 'slot_name', 'state'];

type Declare = (name: string, help: string, labels?: readonly string[]) => Family;
/** [column, help]: one family per column of a part's row, named prefix + column (or the third entry). */
type Columns = ReadonlyArray<readonly [column: string, help: string, name?: string]>;

function declareColumns(make: Declare, prefix: string, labels: readonly string[], columns: Columns): Array<{ column: string; family: Family }> {
  return columns.map(([column, help, name]) => ({ column, family: make(`${prefix}${name ?? column}`, help, labels) }));
}

// pg_stat_database as postgres_exporter 0.11 maps it: counters keep the view's column names
// (no _total), numbackends is a gauge, and the columns its map lacks (Postgres 14's session
// statistics, checksums) it serves untyped, here as gauges. Times are in milliseconds.
const STAT_DATABASE_COUNTERS: Columns = [
  ['xact_commit', 'Number of transactions in this database that have been committed'],
  ['xact_rollback', 'Number of transactions in this database that have been rolled back'],
  ['blks_read', 'Number of disk blocks read in this database'],
  ['blks_hit', 'Number of times disk blocks were found already in the buffer cache, so that a read was not necessary'],
  ['tup_returned', 'Number of rows returned by queries in this database'],
  ['tup_fetched', 'Number of rows fetched by queries in this database'],
  ['tup_inserted', 'Number of rows inserted by queries in this database'],
  ['tup_updated', 'Number of rows updated by queries in this database'],
  ['tup_deleted', 'Number of rows deleted by queries in this database'],
  ['conflicts', 'Number of queries canceled due to conflicts with recovery in this database (replicas)'],
  ['temp_files', 'Number of temporary files created by queries in this database'],
  ['temp_bytes', 'Total amount of data written to temporary files by queries in this database'],
  ['deadlocks', 'Number of deadlocks detected in this database'],
  ['blk_read_time', 'Time spent reading data file blocks by backends in this database, in milliseconds'],
  ['blk_write_time', 'Time spent writing data file blocks by backends in this database, in milliseconds'],
  ['stats_reset', 'Time at which these statistics were last reset, seconds since epoch (NaN: never)'],
];
const STAT_DATABASE_GAUGES: Columns = [
  ['numbackends', 'Number of backends currently connected to this database'],
  ['session_time', 'Time spent by database sessions in this database, in milliseconds'],
  ['active_time', 'Time spent executing SQL statements in this database, in milliseconds'],
  ['idle_in_transaction_time', 'Time spent idling while in a transaction in this database, in milliseconds'],
  ['sessions', 'Total number of sessions established to this database'],
  ['sessions_abandoned', 'Number of database sessions to this database that were terminated because connection to the client was lost'],
  ['sessions_fatal', 'Number of database sessions to this database that were terminated by fatal errors'],
  ['sessions_killed', 'Number of database sessions to this database that were terminated by operator intervention'],
  ['checksum_failures', 'Number of data page checksum failures detected in this database (NaN: checksums off)'],
  ['checksum_last_failure', 'Time at which the last data page checksum failure was detected, seconds since epoch (NaN: none)'],
];
// From pg_stat_database_conflicts, which has no row for datid 0.
const CONFLICT_COUNTERS: Columns = [
  ['confl_tablespace', 'Number of queries in this database that have been canceled due to dropped tablespaces'],
  ['confl_lock', 'Number of queries in this database that have been canceled due to lock timeouts'],
  ['confl_snapshot', 'Number of queries in this database that have been canceled due to old snapshots'],
  ['confl_bufferpin', 'Number of queries in this database that have been canceled due to pinned buffers'],
  ['confl_deadlock', 'Number of queries in this database that have been canceled due to deadlocks'],
];
function declareStatDatabase(g: Declare, c: Declare) {
  const labels = ['datid', 'datname'];
  return {
    columns: [...declareColumns(c, 'pg_stat_database_', labels, STAT_DATABASE_COUNTERS), ...declareColumns(g, 'pg_stat_database_', labels, STAT_DATABASE_GAUGES)],
    conflicts: declareColumns(c, 'pg_stat_database_conflicts_', labels, CONFLICT_COUNTERS),
  };
}

// postgres_exporter 0.11 appends _total to these; checkpoint times are in milliseconds.
const BGWRITER_COLUMNS: Columns = [
  ['checkpoints_timed', 'Number of scheduled checkpoints that have been performed', 'checkpoints_timed_total'],
  ['checkpoints_req', 'Number of requested checkpoints that have been performed', 'checkpoints_req_total'],
  ['checkpoint_write_time', 'Time spent writing files to disk in checkpoints, in milliseconds', 'checkpoint_write_time_total'],
  ['checkpoint_sync_time', 'Time spent synchronizing files to disk in checkpoints, in milliseconds', 'checkpoint_sync_time_total'],
  ['buffers_checkpoint', 'Number of buffers written during checkpoints', 'buffers_checkpoint_total'],
  ['buffers_clean', 'Number of buffers written by the background writer', 'buffers_clean_total'],
  ['maxwritten_clean', 'Number of times the background writer stopped a cleaning scan because it had written too many buffers', 'maxwritten_clean_total'],
  ['buffers_backend', 'Number of buffers written directly by a backend', 'buffers_backend_total'],
  ['buffers_backend_fsync', 'Number of times a backend had to execute its own fsync call', 'buffers_backend_fsync_total'],
  ['buffers_alloc', 'Number of buffers allocated', 'buffers_alloc_total'],
  ['stats_reset', 'Time at which these statistics were last reset, seconds since epoch', 'stats_reset_total'],
];
const ARCHIVER_COUNTERS: Columns = [
  ['archived_count', 'Number of WAL files that have been successfully archived'],
  ['failed_count', 'Number of failed attempts for archiving WAL files'],
];
const USER_TABLE_GAUGES: Columns = [
  ['n_live_tup', 'Estimated number of live rows (top tables by dead rows)'],
  ['n_dead_tup', 'Estimated number of dead rows (top tables by dead rows)'],
  ['n_mod_since_analyze', 'Estimated number of rows changed since last analyze (top tables by dead rows)'],
  ['last_vacuum', 'Last manual vacuum, seconds since epoch (0: never)'],
  ['last_autovacuum', 'Last autovacuum, seconds since epoch (0: never)'],
  ['last_analyze', 'Last manual analyze, seconds since epoch (0: never)'],
  ['last_autoanalyze', 'Last autoanalyze, seconds since epoch (0: never)'],
  ['table_size_bytes', 'Table size without indexes (housekeeper\'s own)'],
  ['index_size_bytes', 'Size of the table\'s indexes (housekeeper\'s own)'],
];
const USER_TABLE_COUNTERS: Columns = [
  ['seq_scan', 'Number of sequential scans initiated on this table'],
  ['seq_tup_read', 'Number of live rows fetched by sequential scans'],
  ['idx_scan', 'Number of index scans initiated on this table'],
  ['idx_tup_fetch', 'Number of live rows fetched by index scans'],
  ['n_tup_ins', 'Number of rows inserted'],
  ['n_tup_upd', 'Number of rows updated'],
  ['n_tup_del', 'Number of rows deleted'],
  ['n_tup_hot_upd', 'Number of rows HOT updated (i.e., with no separate index update required)'],
  ['vacuum_count', 'Number of times this table has been manually vacuumed (not counting VACUUM FULL)'],
  ['autovacuum_count', 'Number of times this table has been vacuumed by the autovacuum daemon'],
  ['analyze_count', 'Number of times this table has been manually analyzed'],
  ['autoanalyze_count', 'Number of times this table has been analyzed by the autovacuum daemon'],
];
const STATIO_COLUMNS: Columns = [
  ['heap_blks_read', 'Number of disk blocks read from this table'],
  ['heap_blks_hit', 'Number of buffer hits in this table'],
  ['idx_blks_read', 'Number of disk blocks read from all indexes on this table'],
  ['idx_blks_hit', 'Number of buffer hits in all indexes on this table'],
  ['toast_blks_read', 'Number of disk blocks read from this table\'s TOAST table (if any)'],
  ['toast_blks_hit', 'Number of buffer hits in this table\'s TOAST table (if any)'],
  ['tidx_blks_read', 'Number of disk blocks read from this table\'s TOAST table indexes (if any)'],
  ['tidx_blks_hit', 'Number of buffer hits in this table\'s TOAST table indexes (if any)'],
];

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
/** Per target: the pg_settings rows last read and the pg_conf_load_time they were read at. */
const settingsCache = new WeakMap<PgTarget, { loadedAt: string; rows: Row[] }>();

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
/** A column of a part's row as a sample: NULL is NaN (as postgres_exporter), timestamps are epoch seconds. */
function columnValue(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (v === null) return NaN;
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v !== 'string') return undefined;
  const n = Number(v);
  if (v.trim() !== '' && !Number.isNaN(n)) return n;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t / 1000;
}
const nullable = (v: unknown): number => columnValue(v) ?? NaN;
// Stages one sample; undefined (a NULL or non-numeric value: util/values.ts num) leaves the series out.
type Put = (metric: Family, labels: LabelValues, v: number | undefined) => void;
/** Sets each family from its column; a column this server version lacks leaves it empty. */
function setColumns(set: Put, families: ReadonlyArray<{ column: string; family: Family }>, labels: LabelValues, row: Row): void {
  for (const { column, family } of families) {
    const v = columnValue(row[column]);
    if (v !== undefined) set(family, labels, v);
  }
}
/** pg_static's short_version as postgres_exporter writes it: 150018 is 15.18.0. */
const shortVersion = (n: number): string => (n >= 100000 ? `${Math.floor(n / 10000)}.${n % 10000}.0` : `${Math.floor(n / 10000)}.${Math.floor(n / 100) % 100}.${n % 100}`);
// pg_stat_statements raises object_not_in_prerequisite_state when it is not preloaded.
const NOT_PRELOADED = '55000';

/** One part of sql.COLLECT's row: its rows, parsed from JSON by pg. */
const part = (row: Row | undefined, name: string): Row[] => {
  const v = row?.[name];
  if (!Array.isArray(v)) throw new Error(`postgres collector: part ${name} missing from the result`);
  return v as Row[];
};

/** Server facts, settings (re-read only after a configuration reload) and the replica's lag. */
function stageServer(set: Put, m: Metrics, srv: Row, settings: readonly Row[]): void {
  set(m.static, { version: str(srv['version']), short_version: shortVersion(num(srv['version_num']) ?? 0) }, 1);
  set(m.startTime, {}, num(srv['start_time_seconds']));
  for (const r of settings) {
    const declared = m.settings.byName.get(str(r['name']));
    const unit = settingUnit(str(r['unit']));
    // A unit of another kind than the declared name says (another version): skip it.
    if (declared === undefined || unit === undefined || unit.suffix !== declared.unit.suffix) continue;
    const v = settingValue(str(r['vartype']), str(r['setting']), unit);
    if (v !== undefined) set(declared.gauge, {}, v);
  }
  set(m.reserved, {}, num(srv['reserved_connections']));
  const isReplica = srv['is_replica'] === true;
  set(m.isReplica, {}, isReplica ? 1 : 0);
  set(m.lag, {}, num(srv['lag_seconds'] ?? 0));
  set(m.lagLegacy, {}, num(srv['lag_seconds'] ?? 0));

}

/** Sessions by state, long-running and blocked queries, locks. */
function stageActivity(set: Put, m: Metrics, all: Row | undefined, longThresholdSeconds: number): void {
  for (const r of part(all, 'activity')) {
    const l = { datname: str(r['datname']), state: str(r['state']) };
    set(m.activity, l, num(r['count']));
    set(m.maxTx, l, num(r['max_tx_seconds']));
  }
  set(m.longThreshold, {}, longThresholdSeconds);
  for (const r of part(all, 'long_and_blocked')) {
    const l = { datname: str(r['datname']) };
    set(m.longCount, l, num(r['long_count']));
    set(m.longMax, l, num(r['long_max_seconds']));
    set(m.blocked, l, num(r['blocked']));
  }
  for (const r of part(all, 'locks')) {
    set(m.locks, { datname: str(r['datname']), mode: str(r['mode']) }, num(r['count']));
  }
}

/** pg_stat_database (with its conflicts), sizes and wraparound ages, bgwriter, archiver. */
function stageDatabases(set: Put, m: Metrics, all: Row | undefined): void {
  for (const r of part(all, 'stat_database')) {
    const l = { datid: str(r['datid']), datname: str(r['datname']) };
    setColumns(set, m.statDatabase.columns, l, r);
    // Only databases with a pg_stat_database_conflicts row (not datid 0), as the anchor.
    if (r['confl_lock'] !== null && r['confl_lock'] !== undefined) setColumns(set, m.statDatabase.conflicts, l, r);
  }
  for (const r of part(all, 'databases')) {
    const l = { datname: str(r['datname']) };
    set(m.dbSize, l, num(r['size_bytes']));
    set(m.frozenAge, l, num(r['frozenxid_age']));
    set(m.minmxAge, l, num(r['minmxid_age']));
  }
  const bgwriter = all?.['bgwriter'] as Row | null | undefined;
  if (bgwriter) setColumns(set, m.bgwriter, {}, bgwriter);
  const archiver = all?.['archiver'] as Row | null | undefined;
  if (archiver) {
    setColumns(set, m.archiver, {}, archiver);
    set(m.archiveAge, {}, nullable(archiver['last_archive_age']));
  }
}

/** Replication slots and, on a primary, its streaming replicas. */
function stageReplication(set: Put, m: Metrics, all: Row | undefined): void {
  for (const r of part(all, 'slots')) {
    const l = { slot_name: str(r['slot_name']), database: str(r['database']) };
    set(m.slotActive, l, r['active'] === true ? 1 : 0);
    set(m.slotLag, l, nullable(r['lag_bytes']));
  }
  // Empty on a replica (the part's WHERE NOT pg_is_in_recovery()).
  for (const r of part(all, 'replicas')) {
    const l = { application_name: str(r['application_name']), client_addr: str(r['client_addr']), slot_name: str(r['slot_name']), state: str(r['state']) };
    set(m.replicaLagBytes, l, num(r['lag_bytes']));
    set(m.replicaLagSeconds, l, num(r['replay_lag_seconds']));
    set(m.replicaWalBytes, l, num(r['current_wal_lsn_bytes']));
    set(m.replicaReplyTime, l, nullable(r['reply_time']));
  }
}

/** The top-N tables' pg_stat_user_tables and pg_statio_user_tables rows, and the table count. */
function stageTables(set: Put, m: Metrics, all: Row | undefined, srv: Row): void {
  for (const r of part(all, 'tables')) {
    const l = { datname: str(r['datname']), schemaname: str(r['schemaname']), relname: str(r['relname']) };
    setColumns(set, m.userTables, l, r);
    setColumns(set, m.userTableCounters, l, r);
    setColumns(set, m.statio, l, r);
  }
  set(m.tables, { datname: str(srv['datname']) }, num(srv['table_count'] ?? 0));
}

export default defineCollector<PgTarget, Metrics>({
  name: 'postgres',
  enabledByDefault: true,
  targets: (t) => t.postgres,
  metrics: declare,
  up: (m) => m.up,
  async collect(ctx: CollectContext<PgTarget>, m, config) {
    const opts = config.collectors.postgres;
    await ctx.target.use(ctx.signal, async (client) => {
      // postgres_exporter's `server` label: host:port of the connection as configured.
      const conn = client as unknown as { host: string; port: number };
      const server = `${conn.host}:${conn.port}`;
      const set: Put = (metric, labels, v) => {
        if (v !== undefined) ctx.set(metric, { server, ...labels }, v);
      };
      // One round trip for everything but pg_stat_statements (see src/sql/postgres.ts).
      const cached = settingsCache.get(ctx.target);
      const [all] = await rows(ctx, client, COLLECT_NAME, sql.COLLECT, [opts.longQueryThresholdMs / 1000, opts.topTables, cached?.loadedAt ?? null]);
      const srv = all?.['server'] as Row | null | undefined;
      if (!srv) throw new Error('postgres collector: no server row');
      // The settings come only after a configuration (re)load; in between, the last ones hold.
      const loadedAt = str(srv['conf_load_time']);
      const settings = cached !== undefined && cached.loadedAt === loadedAt ? cached.rows : part(all, 'settings');
      settingsCache.set(ctx.target, { loadedAt, rows: settings });
      stageServer(set, m, srv, settings);
      stageActivity(set, m, all, opts.longQueryThresholdMs / 1000);
      stageDatabases(set, m, all);
      stageReplication(set, m, all);
      stageTables(set, m, all, srv);

      // pg_stat_statements is optional: absent, or installed but not preloaded (its view
      // raises 55000), means enabled=0 and no statement series: "no data", not a failure.
      // Any other failure (permissions, a timeout) fails this part only: the rest is served
      // and pg_exporter_last_scrape_error says 1, as postgres_exporter does for a failed query.
      let top: Row[] | undefined;
      let partFailed = false;
      if (srv['statements_installed'] === true) {
        try {
          top = await rows(ctx, client, TOP_STATEMENTS_NAME, sql.TOP_STATEMENTS, [opts.topStatements]);
        } catch (err) {
          if (ctx.signal.aborted) throw err;
          partFailed = (err as { code?: unknown }).code !== NOT_PRELOADED;
          ctx.log.debug({ target: ctx.target.name, err }, 'pg_stat_statements not readable');
        }
      }
      ctx.set(m.scrapeError, {}, partFailed ? 1 : 0);
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
