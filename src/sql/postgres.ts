// Every SQL statement the Postgres collector runs, named. Values are bound parameters;
// nothing here is ever built from input.
//
// A collection is one statement: COLLECT runs the named parts below as sub-selects and
// returns each part's rows as JSON. TOP_STATEMENTS stays on its own, because reading
// pg_stat_statements fails where the extension is installed but not preloaded. With one
// statement per part, the round trips and the parsing of each statement cost more than the
// parts' own work (bench/README.md).

/**
 * One row: reserved_connections (PG 16 and later, NULL before; the settings list is read
 * from PG 15), whether this server is a replica and its replay lag (0 when it has replayed
 * all it received), the connected database's user-table count, whether pg_stat_statements is
 * installed there, the version (pg_static) and when the postmaster started.
 */
export const SERVER = `
SELECT current_setting('reserved_connections', true)::float8 AS reserved_connections,
       pg_is_in_recovery() AS is_replica,
       CASE
         WHEN NOT pg_is_in_recovery() THEN 0
         WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
         ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
       END::float8 AS lag_seconds,
       current_database() AS datname,
       (SELECT count(*) FROM pg_stat_user_tables)::float8 AS table_count,
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS statements_installed,
       version() AS version,
       current_setting('server_version_num')::int AS version_num,
       pg_conf_load_time()::text AS conf_load_time,
       EXTRACT(EPOCH FROM pg_postmaster_start_time())::float8 AS start_time_seconds`;

/**
 * The settings postgres_exporter 0.11 turns into pg_settings_* gauges (its own filter; the
 * collector converts units as it does). Only when the configuration was (re)loaded since
 * the collector last read them ($3: the pg_conf_load_time it read them at, as text): the
 * server settings change only then, and building the pg_settings view costs as much as the
 * rest of the statement. Otherwise no rows (a one-time filter: the view is not built). PG_SETTINGS_QUERY adds the description, for
 * scripts/pg-settings.ts, which generates the list of families.
 */
export const SETTINGS = `
SELECT name, setting, COALESCE(unit, '') AS unit, vartype
FROM pg_settings
WHERE vartype IN ('bool', 'integer', 'real') AND name <> 'sync_commit_cancel_wait'
  AND pg_conf_load_time()::text IS DISTINCT FROM $3`;
export const PG_SETTINGS_QUERY = `
SELECT name, COALESCE(unit, '') AS unit, short_desc
FROM pg_settings
WHERE vartype IN ('bool', 'integer', 'real') AND name <> 'sync_commit_cancel_wait'`;

/** Connections per database and state, zero-filled so an alert sees 0 rather than nothing. */
export const ACTIVITY = `
SELECT d.datname, s.state,
       COALESCE(a.count, 0)::float8 AS count,
       COALESCE(a.max_tx_seconds, 0)::float8 AS max_tx_seconds
FROM pg_database d
CROSS JOIN (VALUES ('active'), ('idle'), ('idle in transaction'),
                   ('idle in transaction (aborted)'), ('fastpath function call'), ('disabled')) AS s(state)
LEFT JOIN (
  SELECT datname, state, count(*) AS count,
         MAX(EXTRACT(EPOCH FROM now() - xact_start)) AS max_tx_seconds
  FROM pg_stat_activity
  WHERE datname IS NOT NULL
  GROUP BY datname, state
) a ON a.datname = d.datname AND a.state = s.state
WHERE NOT d.datistemplate`;

/**
 * Client queries running longer than $1 seconds (COLLECT's first parameter), per database;
 * also sessions waiting on a heavyweight lock. Zero-filled per database. Our own backend is
 * excluded.
 */
export const LONG_AND_BLOCKED = `
SELECT d.datname,
       COUNT(a.pid) FILTER (WHERE a.state = 'active' AND a.query_start < now() - make_interval(secs => $1))::float8 AS long_count,
       COALESCE(MAX(EXTRACT(EPOCH FROM now() - a.query_start))
                FILTER (WHERE a.state = 'active' AND a.query_start < now() - make_interval(secs => $1)), 0)::float8 AS long_max_seconds,
       COUNT(a.pid) FILTER (WHERE a.wait_event_type = 'Lock')::float8 AS blocked
FROM pg_database d
LEFT JOIN pg_stat_activity a
  ON a.datname = d.datname AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
WHERE NOT d.datistemplate
GROUP BY d.datname`;

/** Locks held or awaited, per database and mode (lower-case, as postgres_exporter names them). */
export const LOCKS = `
SELECT d.datname, lower(m.mode) AS mode, COUNT(l.locktype)::float8 AS count
FROM pg_database d
CROSS JOIN (VALUES ('AccessShareLock'), ('RowShareLock'), ('RowExclusiveLock'), ('ShareUpdateExclusiveLock'),
                   ('ShareLock'), ('ShareRowExclusiveLock'), ('ExclusiveLock'), ('AccessExclusiveLock'),
                   ('SIReadLock')) AS m(mode)
LEFT JOIN pg_locks l ON l.database = d.oid AND l.mode = m.mode
WHERE NOT d.datistemplate
GROUP BY d.datname, m.mode`;

/**
 * Every row of pg_stat_database, as postgres_exporter reads it (including datid 0, shared
 * catalogs, with a NULL datname), joined with the recovery-conflict counters of the
 * databases that have them. Whole rows (s.*), like the anchor's SELECT *: the columns differ
 * between Postgres versions, and the collector maps those it knows (timestamps arrive as
 * ISO strings, times in milliseconds as the anchor serves them).
 */
export const STAT_DATABASE = `
SELECT s.*, c.confl_tablespace, c.confl_lock, c.confl_snapshot, c.confl_bufferpin, c.confl_deadlock
FROM pg_stat_database s
LEFT JOIN pg_stat_database_conflicts c ON c.datid = s.datid`;

/**
 * Size and transaction ID ages (wraparound) of the databases that accept connections.
 * postgres_exporter also sizes template0/template1; their size does not move, and each
 * pg_database_size walks a directory (the costliest part of this statement).
 */
export const DATABASES = `
SELECT d.datname,
       pg_database_size(d.oid)::float8 AS size_bytes,
       age(d.datfrozenxid)::float8 AS frozenxid_age,
       mxid_age(d.datminmxid)::float8 AS minmxid_age
FROM pg_database d
WHERE d.datallowconn AND NOT d.datistemplate`;

/**
 * The background writer's and the archiver's one row each, whole for the same reason as
 * STAT_DATABASE (Postgres 17 moved the checkpoint columns out of pg_stat_bgwriter: absent
 * columns leave their families empty rather than failing the statement).
 */
export const BGWRITER = `SELECT * FROM pg_stat_bgwriter`;
export const ARCHIVER = `SELECT *, EXTRACT(EPOCH FROM now() - last_archived_time)::float8 AS last_archive_age FROM pg_stat_archiver`;

/**
 * Replication slots and the WAL each one holds back, in bytes (NULL until a slot has a
 * restart_lsn). On a replica the position is what it received, where pg_current_wal_lsn()
 * would raise.
 */
export const SLOTS = `
SELECT slot_name::text, COALESCE(database::text, '') AS database, active,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
                       restart_lsn)::float8 AS lag_bytes
FROM pg_replication_slots`;

/**
 * On a primary: each streaming replica's lag in bytes and seconds. slot_name carries the
 * walsender's pid: postgres_exporter 0.11 fills that label so, and dashboards group by it.
 */
export const REPLICAS = `
SELECT pid::text AS slot_name, COALESCE(application_name, '') AS application_name,
       COALESCE(host(client_addr), 'local') AS client_addr,
       COALESCE(state, '') AS state,
       COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8 AS lag_bytes,
       COALESCE(EXTRACT(EPOCH FROM replay_lag), 0)::float8 AS replay_lag_seconds,
       pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 AS current_wal_lsn_bytes,
       EXTRACT(EPOCH FROM reply_time)::float8 AS reply_time
FROM pg_stat_replication
WHERE NOT pg_is_in_recovery()`;

/**
 * The $2 (COLLECT's second parameter) tables of the connected database with the most dead
 * tuples (bounded cardinality), with their pg_stat_user_tables and pg_statio_user_tables
 * counters: one bound for both families.
 */
export const TABLES = `
SELECT current_database() AS datname, t.schemaname, t.relname,
       t.seq_scan::float8, t.seq_tup_read::float8,
       COALESCE(t.idx_scan, 0)::float8 AS idx_scan, COALESCE(t.idx_tup_fetch, 0)::float8 AS idx_tup_fetch,
       t.n_tup_ins::float8, t.n_tup_upd::float8, t.n_tup_del::float8, t.n_tup_hot_upd::float8,
       t.n_live_tup::float8, t.n_dead_tup::float8, t.n_mod_since_analyze::float8,
       COALESCE(EXTRACT(EPOCH FROM t.last_vacuum), 0)::float8 AS last_vacuum,
       COALESCE(EXTRACT(EPOCH FROM t.last_autovacuum), 0)::float8 AS last_autovacuum,
       COALESCE(EXTRACT(EPOCH FROM t.last_analyze), 0)::float8 AS last_analyze,
       COALESCE(EXTRACT(EPOCH FROM t.last_autoanalyze), 0)::float8 AS last_autoanalyze,
       t.vacuum_count::float8, t.autovacuum_count::float8, t.analyze_count::float8, t.autoanalyze_count::float8,
       COALESCE(pg_table_size(t.relid), 0)::float8 AS table_size_bytes,
       COALESCE(pg_indexes_size(t.relid), 0)::float8 AS index_size_bytes,
       COALESCE(io.heap_blks_read, 0)::float8 AS heap_blks_read, COALESCE(io.heap_blks_hit, 0)::float8 AS heap_blks_hit,
       COALESCE(io.idx_blks_read, 0)::float8 AS idx_blks_read, COALESCE(io.idx_blks_hit, 0)::float8 AS idx_blks_hit,
       COALESCE(io.toast_blks_read, 0)::float8 AS toast_blks_read, COALESCE(io.toast_blks_hit, 0)::float8 AS toast_blks_hit,
       COALESCE(io.tidx_blks_read, 0)::float8 AS tidx_blks_read, COALESCE(io.tidx_blks_hit, 0)::float8 AS tidx_blks_hit
FROM pg_stat_user_tables t
LEFT JOIN pg_statio_user_tables io ON io.relid = t.relid
ORDER BY t.n_dead_tup DESC, t.relid
LIMIT $2`;

/** A part's rows as a JSON array ([] when none). */
const rowsOf = (part: string): string => `(SELECT COALESCE(json_agg(r), '[]'::json) FROM (${part}) r)`;

/**
 * Everything above in one statement: a row whose columns are the parts, each part's rows as
 * JSON. $1: long-query threshold in seconds; $2: how many tables; $3: the pg_conf_load_time
 * the settings were last read at (NULL: never).
 */
export const COLLECT = `
SELECT (SELECT row_to_json(r) FROM (${SERVER}) r) AS server,
       ${rowsOf(SETTINGS)} AS settings,
       ${rowsOf(ACTIVITY)} AS activity,
       ${rowsOf(LONG_AND_BLOCKED)} AS long_and_blocked,
       ${rowsOf(LOCKS)} AS locks,
       ${rowsOf(STAT_DATABASE)} AS stat_database,
       ${rowsOf(DATABASES)} AS databases,
       (SELECT row_to_json(r) FROM (${BGWRITER}) r) AS bgwriter,
       (SELECT row_to_json(r) FROM (${ARCHIVER}) r) AS archiver,
       ${rowsOf(SLOTS)} AS slots,
       ${rowsOf(REPLICAS)} AS replicas,
       ${rowsOf(TABLES)} AS tables`;

/**
 * The $1 statements with the highest mean execution time. Labelled by queryid, database and
 * user only: query text can carry literals (even passwords in utility statements), so it
 * never becomes a label.
 */
export const TOP_STATEMENTS = `
SELECT s.queryid::text AS queryid, COALESCE(d.datname, '') AS datname, COALESCE(r.rolname, '') AS usename,
       s.calls::float8, (s.total_exec_time / 1000)::float8 AS total_seconds,
       (s.mean_exec_time / 1000)::float8 AS mean_seconds, s.rows::float8
FROM pg_stat_statements s
LEFT JOIN pg_database d ON d.oid = s.dbid
LEFT JOIN pg_roles r ON r.oid = s.userid
WHERE s.queryid IS NOT NULL
ORDER BY s.mean_exec_time DESC
LIMIT $1`;
