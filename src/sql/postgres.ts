// Every SQL statement the Postgres collector runs, named. Values are bound parameters;
// nothing here is ever built from input.
//
// A collection is one statement: COLLECT runs the named parts below as sub-selects and
// returns each part's rows as JSON. TOP_STATEMENTS stays on its own, because reading
// pg_stat_statements fails where the extension is installed but not preloaded. With one
// statement per part, the round trips and the parsing of each statement cost more than the
// parts' own work (bench/README.md).

/**
 * One row: connection limits (reserved_connections only exists from PG 16, NULL before),
 * whether this server is a replica and its replay lag (0 when it has replayed all it
 * received), the connected database's user-table count, and whether pg_stat_statements is
 * installed there. current_setting() reads one setting; pg_settings would build all ~350.
 */
export const SERVER = `
SELECT current_setting('max_connections')::float8 AS max_connections,
       current_setting('superuser_reserved_connections')::float8 AS superuser_reserved_connections,
       current_setting('reserved_connections', true)::float8 AS reserved_connections,
       pg_is_in_recovery() AS is_replica,
       CASE
         WHEN NOT pg_is_in_recovery() THEN 0
         WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
         ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
       END::float8 AS lag_seconds,
       current_database() AS datname,
       (SELECT count(*) FROM pg_stat_user_tables)::float8 AS table_count,
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS statements_installed`;

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

/** Per-database counters, size and transaction ID age (wraparound). */
export const DATABASES = `
SELECT s.datname,
       s.deadlocks::float8, s.xact_commit::float8, s.xact_rollback::float8,
       s.blks_hit::float8, s.blks_read::float8, s.conflicts::float8, s.temp_bytes::float8,
       pg_database_size(d.oid)::float8 AS size_bytes,
       age(d.datfrozenxid)::float8 AS frozenxid_age,
       mxid_age(d.datminmxid)::float8 AS minmxid_age
FROM pg_stat_database s
JOIN pg_database d ON d.oid = s.datid
WHERE d.datallowconn AND NOT d.datistemplate`;

/** On a primary: each streaming replica's lag in bytes and seconds. */
export const REPLICAS = `
SELECT COALESCE(application_name, '') AS application_name,
       COALESCE(host(client_addr), 'local') AS client_addr,
       COALESCE(state, '') AS state,
       COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8 AS lag_bytes,
       COALESCE(EXTRACT(EPOCH FROM replay_lag), 0)::float8 AS replay_lag_seconds
FROM pg_stat_replication
WHERE NOT pg_is_in_recovery()`;

/**
 * The $2 (COLLECT's second parameter) tables of the connected database with the most dead
 * tuples (bounded cardinality).
 */
export const TABLES = `
SELECT current_database() AS datname, schemaname, relname,
       n_live_tup::float8, n_dead_tup::float8,
       COALESCE(EXTRACT(EPOCH FROM last_vacuum), 0)::float8 AS last_vacuum,
       COALESCE(EXTRACT(EPOCH FROM last_autovacuum), 0)::float8 AS last_autovacuum,
       COALESCE(EXTRACT(EPOCH FROM last_analyze), 0)::float8 AS last_analyze,
       COALESCE(EXTRACT(EPOCH FROM last_autoanalyze), 0)::float8 AS last_autoanalyze,
       vacuum_count::float8, autovacuum_count::float8,
       COALESCE(pg_table_size(relid), 0)::float8 AS table_size_bytes,
       COALESCE(pg_indexes_size(relid), 0)::float8 AS index_size_bytes
FROM pg_stat_user_tables
ORDER BY n_dead_tup DESC, relid
LIMIT $2`;

/** A part's rows as a JSON array ([] when none). */
const rowsOf = (part: string): string => `(SELECT COALESCE(json_agg(r), '[]'::json) FROM (${part}) r)`;

/**
 * Everything above in one statement: a row whose columns are the parts, each part's rows as
 * JSON. $1: long-query threshold in seconds; $2: how many tables.
 */
export const COLLECT = `
SELECT (SELECT row_to_json(r) FROM (${SERVER}) r) AS server,
       ${rowsOf(ACTIVITY)} AS activity,
       ${rowsOf(LONG_AND_BLOCKED)} AS long_and_blocked,
       ${rowsOf(LOCKS)} AS locks,
       ${rowsOf(DATABASES)} AS databases,
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
