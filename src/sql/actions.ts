// Every SQL statement (and PgBouncer admin command) the remediation actions run, named.
// Values are bound parameters. The few statements that must carry an identifier or a
// number in their text (VACUUM, REINDEX, FETCH, PgBouncer's SET) are built here by
// functions that take identifiers already read from the catalog and quote them, or
// integers they check themselves; nothing here ever formats text from params or labels.

// ---------------------------------------------------------------------------------------
// Session settings for long maintenance statements (bound values through set_config).

/** $1: statement_timeout in ms, as text. Session-level; the caller resets it afterwards. */
export const SET_STATEMENT_TIMEOUT = `SELECT set_config('statement_timeout', $1, false)`;
export const RESET_STATEMENT_TIMEOUT = 'RESET statement_timeout';
/**
 * $1: ms, as text. From PG 14 the server checks during a long statement whether the client
 * is still there, so a VACUUM or REINDEX whose connection we drop (deadline) stops too.
 */
export const SET_CLIENT_CHECK = `SELECT set_config('client_connection_check_interval', $1, false)`;
export const RESET_CLIENT_CHECK = 'RESET client_connection_check_interval';
export const SERVER_VERSION_NUM = `SELECT current_setting('server_version_num')::int AS version`;

// ---------------------------------------------------------------------------------------
// Connection limits of a Postgres server (pgbouncer-pool-resize's cap).

/**
 * The connections ordinary roles may use, and how many client backends are open now.
 * reserved_connections exists from PG 16; missing settings count as 0.
 */
export const CONNECTION_BUDGET = `
SELECT current_setting('max_connections')::int AS max_connections,
       COALESCE((SELECT setting::int FROM pg_settings WHERE name = 'superuser_reserved_connections'), 0) AS superuser_reserved,
       COALESCE((SELECT setting::int FROM pg_settings WHERE name = 'reserved_connections'), 0) AS reserved,
       (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS client_backends`;

// ---------------------------------------------------------------------------------------
// Sessions: long-running queries and idle-in-transaction sessions.
//
// Shared parameters: $1 threshold in seconds, $2 protected user names (text[]), $3 protected
// application names (text[]), $4 database name or NULL for all, $5 row limit.
// `permitted` says whether our role may signal the backend (superuser; or, for a
// non-superuser backend, privileges of its role or of pg_signal_backend): signalling one
// we may not raises an ERROR that would abort the whole statement, so those are never
// signalled, only reported.

const SESSION_COMMON = `
  FROM pg_stat_activity a
  CROSS JOIN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) me
  LEFT JOIN pg_roles r ON r.oid = a.usesysid
  WHERE a.backend_type = 'client backend'
    AND a.pid <> pg_backend_pid()
    AND COALESCE(a.usename, '') <> ALL ($2::text[])
    AND COALESCE(a.application_name, '') <> ALL ($3::text[])
    AND ($4::text IS NULL OR a.datname = $4::text)`;

const SESSION_COLUMNS = `
  a.pid, COALESCE(a.usename, '') AS usename, COALESCE(a.application_name, '') AS application_name,
  COALESCE(a.datname, '') AS datname,
  (me.rolsuper OR (NOT COALESCE(r.rolsuper, false)
     AND (COALESCE(pg_has_role(a.usesysid, 'USAGE'), false) OR pg_has_role('pg_signal_backend', 'USAGE')))) AS permitted`;

const LONG_QUERIES = `
WITH candidates AS (
  SELECT ${SESSION_COLUMNS},
         EXTRACT(EPOCH FROM now() - a.query_start)::float8 AS seconds
  ${SESSION_COMMON}
    AND a.state = 'active'
    AND a.query_start < now() - make_interval(secs => $1)
)`;

// The two session statements differ only in their candidates and the signal they send.
const LIST_CANDIDATES = `
SELECT pid, usename, application_name, datname, seconds, permitted,
       count(*) OVER ()::int AS total,
       (count(*) FILTER (WHERE permitted) OVER ())::int AS permitted_total
FROM candidates
ORDER BY seconds DESC, pid
LIMIT $5`;
const signalCandidates = (fn: 'pg_cancel_backend' | 'pg_terminate_backend'): string => `,
victims AS MATERIALIZED (
  SELECT * FROM candidates WHERE permitted ORDER BY seconds DESC, pid LIMIT $5
)
SELECT pid, usename, application_name, datname, seconds, ${fn}(pid) AS signalled
FROM victims`;

/** Active queries over the threshold (oldest first), with totals before the limit. Never their text. */
export const LIST_LONG_QUERIES = `${LONG_QUERIES}${LIST_CANDIDATES}`;

/** Cancels the permitted ones among them (oldest first, at most $5), in one statement. */
export const CANCEL_LONG_QUERIES = `${LONG_QUERIES}${signalCandidates('pg_cancel_backend')}`;

const IDLE_IN_TRANSACTION = `
WITH candidates AS (
  SELECT ${SESSION_COLUMNS},
         EXTRACT(EPOCH FROM now() - a.state_change)::float8 AS seconds
  ${SESSION_COMMON}
    AND a.state IN ('idle in transaction', 'idle in transaction (aborted)')
    AND a.state_change < now() - make_interval(secs => $1)
)`;

/** Sessions idle in a transaction longer than the threshold (longest first), with totals. */
export const LIST_IDLE_IN_TRANSACTION = `${IDLE_IN_TRANSACTION}${LIST_CANDIDATES}`;

/** Terminates the permitted ones among them (longest first, at most $5), in one statement. */
export const TERMINATE_IDLE_IN_TRANSACTION = `${IDLE_IN_TRANSACTION}${signalCandidates('pg_terminate_backend')}`;

// ---------------------------------------------------------------------------------------
// VACUUM

const TABLE_COLUMNS = `
  schemaname AS schema, relname AS table,
  n_live_tup::float8 AS live, n_dead_tup::float8 AS dead,
  (n_dead_tup::float8 / GREATEST(n_live_tup + n_dead_tup, 1))::float8 AS dead_ratio`;

/** $1 min dead tuples, $2 dead ratio (over), $3 limit: the tables a vacuum would take, worst first. */
export const TABLES_OVER_DEAD_RATIO = `
SELECT ${TABLE_COLUMNS},
       count(*) OVER ()::int AS total
FROM pg_stat_user_tables
WHERE n_dead_tup >= $1
  AND n_dead_tup::float8 / GREATEST(n_live_tup + n_dead_tup, 1) > $2
ORDER BY n_dead_tup DESC, relid
LIMIT $3`;

/** $1 table name, $2 schema or NULL: exact (case-sensitive) match against the catalog. */
export const TABLE_BY_NAME = `
SELECT ${TABLE_COLUMNS}
FROM pg_stat_user_tables
WHERE relname = $1::text AND ($2::text IS NULL OR schemaname = $2::text)
ORDER BY schemaname`;

/** VACUUM (ANALYZE) of one table whose schema and name came from pg_stat_user_tables. */
export function vacuumAnalyze(quotedSchema: string, quotedTable: string): string {
  return `VACUUM (ANALYZE) ${quotedSchema}.${quotedTable}`;
}

// ---------------------------------------------------------------------------------------
// REINDEX

// Indexes an action may rebuild: plain indexes (not partitioned), outside pg_catalog,
// pg_toast, temp schemas and information_schema.
const INDEX_FROM = `
FROM pg_index i
JOIN pg_class ci ON ci.oid = i.indexrelid
JOIN pg_class ct ON ct.oid = i.indrelid
JOIN pg_namespace n ON n.oid = ci.relnamespace
WHERE ci.relkind = 'i' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'`;

/** $1 index name, $2 schema or NULL: exact match against pg_class/pg_index. */
export const INDEX_BY_NAME = `
SELECT n.nspname AS schema, ci.relname AS index, ct.relname AS table, i.indisvalid AS valid,
       pg_relation_size(ci.oid)::float8 AS bytes
${INDEX_FROM}
  AND ci.relname = $1::text AND ($2::text IS NULL OR n.nspname = $2::text)
ORDER BY n.nspname`;

/**
 * B-tree indexes whose size exceeds a simple estimate of what they would take if rebuilt.
 * The estimate: each leaf tuple costs a 4-byte line pointer plus MAXALIGN(8-byte tuple
 * header + the sum of pg_stats.avg_width of its columns); leaf pages hold
 * (block_size - 24 header - 16 special) * 0.9 (the default fillfactor) bytes of them; add
 * the meta page and 1% for inner pages. bloat_ratio = 1 - estimate / actual size. Indexes
 * on expressions, with columns lacking statistics (never analysed), or with unknown
 * reltuples are left out: no estimate, no action. It is rough (it ignores nulls, per-index
 * fillfactor and deduplication of equal keys, which makes a fresh index smaller than the
 * estimate, never larger), so thresholds should be coarse (default 0.5).
 *
 * $1 min size in bytes, $2 bloat ratio (over), $3 limit.
 */
export const BLOATED_INDEXES = `
WITH idx AS (
  SELECT n.nspname AS schema, ci.relname AS index, ct.relname AS table,
         ci.reltuples::float8 AS tuples,
         pg_relation_size(ci.oid)::float8 AS bytes,
         current_setting('block_size')::float8 AS block_size,
         i.indnatts,
         (SELECT count(*) FROM unnest(i.indkey::int2[]) AS k(attnum)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = ct.relname
                           AND s.attname = a.attname AND NOT s.inherited) AS cols_with_stats,
         (SELECT sum(s.avg_width)::float8 FROM unnest(i.indkey::int2[]) AS k(attnum)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = ct.relname
                           AND s.attname = a.attname AND NOT s.inherited) AS key_width
  ${INDEX_FROM}
    AND i.indisvalid
    AND ci.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
    AND NOT (0 = ANY (i.indkey::int2[]))
), est AS (
  SELECT *,
         (ceil(tuples * (4 + ceil((8 + key_width) / 8) * 8) / ((block_size - 40) * 0.9)) * 1.01 + 1) * block_size AS expected_bytes
  FROM idx
  WHERE tuples >= 0 AND key_width IS NOT NULL AND cols_with_stats = indnatts
)
SELECT schema, index, "table", bytes, expected_bytes::float8 AS expected_bytes,
       GREATEST(0, 1 - expected_bytes / NULLIF(bytes, 0))::float8 AS bloat_ratio,
       count(*) OVER ()::int AS total
FROM est
WHERE bytes >= $1 AND 1 - expected_bytes / NULLIF(bytes, 0) > $2
ORDER BY bytes - expected_bytes DESC, schema, index
LIMIT $3`;

/**
 * $1 schemas, $2 index names (text[], pairwise): each index's validity, and invalid
 * leftovers of an interrupted REINDEX CONCURRENTLY (<name>_ccnew…) on the same table.
 */
export const INDEX_VALIDITY = `
SELECT w.schema, w.index,
       i.indisvalid AS valid,
       (SELECT array_agg(cl.relname ORDER BY cl.relname)
          FROM pg_index li JOIN pg_class cl ON cl.oid = li.indexrelid
         WHERE li.indrelid = i.indrelid AND NOT li.indisvalid
           AND left(cl.relname, length(w.index) + 6) = w.index || '_ccnew') AS leftovers
FROM unnest($1::text[], $2::text[]) AS w(schema, index)
LEFT JOIN pg_namespace n ON n.nspname = w.schema
LEFT JOIN pg_class ci ON ci.relnamespace = n.oid AND ci.relname = w.index AND ci.relkind = 'i'
LEFT JOIN pg_index i ON i.indexrelid = ci.oid`;

/** REINDEX INDEX CONCURRENTLY of one index whose schema and name came from the catalog. */
export function reindexConcurrently(quotedSchema: string, quotedIndex: string): string {
  return `REINDEX INDEX CONCURRENTLY ${quotedSchema}.${quotedIndex}`;
}

// ---------------------------------------------------------------------------------------
// redis-warm: the configured query (trusted SQL from the config file, never from alerts)
// read through a cursor in a read-only transaction, so it cannot change data and its rows
// arrive in bounded batches.

export const BEGIN_READ_ONLY = 'BEGIN TRANSACTION READ ONLY';
export const COMMIT = 'COMMIT';
export const ROLLBACK = 'ROLLBACK';
export const WARM_CURSOR = 'housekeeper_warm';

/** DECLARE over the configured SELECT; sent with the extended protocol (one statement only). */
export function declareWarmCursor(trustedConfigSql: string): string {
  const body = trustedConfigSql.trim().replace(/;\s*$/, '');
  return `DECLARE ${WARM_CURSOR} NO SCROLL CURSOR FOR ${body}`;
}

export function fetchWarmCursor(rows: number): string {
  return `FETCH FORWARD ${checkedInt(rows, 1, 1_000_000, 'fetch size')} FROM ${WARM_CURSOR}`;
}

// ---------------------------------------------------------------------------------------
// PgBouncer admin console (simple query protocol only: no parameters).

export const BOUNCER_SHOW_DATABASES = 'SHOW DATABASES';
export const BOUNCER_SHOW_POOLS = 'SHOW POOLS';
export const BOUNCER_SHOW_CONFIG = 'SHOW CONFIG';
/** Re-reads pgbouncer.ini: every setting changed with SET goes back to the file's value. */
export const BOUNCER_RELOAD = 'RELOAD';

/** The only SET this service sends; the number is checked here, never taken as text. */
export function bouncerSetDefaultPoolSize(n: number): string {
  return `SET default_pool_size = ${checkedInt(n, 1, 10_000, 'default_pool_size')}`;
}

function checkedInt(n: number, min: number, max: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`${what} must be an integer in ${min}..${max}`);
  return n;
}
