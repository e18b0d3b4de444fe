// Every SQL statement cleanup-old-rows and archive-old-rows run, named. Tables and columns
// come from config and are first looked up in the catalog (bound values); the statements
// that must carry identifiers are built here by functions that take names the catalog gave
// back, already quoted with escapeIdentifier. Cutoffs and batch sizes are bound parameters.

/**
 * $1 schema or NULL, $2 table, $3 column or NULL: every relation with that exact name outside
 * the system schemas, with its kind, the column's type (a domain's base type too) and what
 * our role may do with it. Views and foreign tables are listed so the error can say what
 * the name is; the action accepts ordinary tables only.
 */
export const RELATION_AND_COLUMN = `
SELECT n.nspname AS schema, c.relname AS "table", c.relkind::text AS kind, c.oid::int8::text AS oid,
       a.attname AS "column",
       format_type(a.atttypid, a.atttypmod) AS column_type,
       bt.typname AS base_type,
       bn.nspname AS base_type_schema,
       has_table_privilege(c.oid, 'SELECT') AS can_select,
       has_table_privilege(c.oid, 'DELETE') AS can_delete,
       has_table_privilege(c.oid, 'INSERT') AS can_insert
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $3::text AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_namespace bn ON bn.oid = bt.typnamespace
WHERE c.relname = $2::text
  AND ($1::text IS NULL OR n.nspname = $1::text)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
ORDER BY n.nspname`;

/** $1 schema: whether it exists and whether our role may create tables in it. */
export const SCHEMA_PRIVILEGES = `
SELECT n.nspname AS schema, has_schema_privilege(n.oid, 'CREATE') AS can_create
FROM pg_namespace n WHERE n.nspname = $1::text`;

/** $1 relation oid: its live columns in order, with what an INSERT must know about each. */
export const RELATION_COLUMNS = `
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       a.attgenerated::text AS generated, a.attidentity::text AS identity,
       a.attnotnull AS not_null, a.atthasdef AS has_default
FROM pg_attribute a
WHERE a.attrelid = $1::text::oid AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`;

/**
 * $1 relation oid: foreign keys of other tables that reference it, with their ON DELETE
 * action (a no action, r restrict, c cascade, n set null, d set default). Deleting a
 * referenced row fires them.
 */
export const REFERENCING_FOREIGN_KEYS = `
SELECT con.conname AS name, cn.nspname AS schema, cl.relname AS "table", con.confdeltype::text AS on_delete
FROM pg_constraint con
JOIN pg_class cl ON cl.oid = con.conrelid
JOIN pg_namespace cn ON cn.oid = cl.relnamespace
WHERE con.contype = 'f' AND con.confrelid = $1::text::oid AND con.conrelid <> con.confrelid
ORDER BY cn.nspname, cl.relname, con.conname`;

/**
 * $1 age in seconds: the cutoff, the database's now() minus the age, as ISO-8601 UTC text
 * with microseconds. The database's clock dates the rows (DEFAULT now()), so it dates the
 * cutoff; text keeps the microseconds a JS Date would drop and reads back the same under any
 * DateStyle. One cutoff per run: rows that age past it during the run wait for the next.
 */
export const CUTOFF = `
SELECT to_char((now() - make_interval(secs => $1::float8)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cutoff`;

/**
 * Rows older than the cutoff ($1, timestamptz text), counted up to $2 so a huge backlog
 * costs a bounded scan. A timestamp (without time zone) column is compared in the session's
 * TimeZone, a date column as its midnight.
 */
export function countOlder(quotedSchema: string, quotedTable: string, quotedColumn: string): string {
  return `SELECT count(*)::int8 AS n FROM (SELECT 1 FROM ${quotedSchema}.${quotedTable} WHERE ${quotedColumn} < $1::timestamptz LIMIT $2) s`;
}

/** Rows older than the cutoff ($1), all of them (the archive's count, before and after a run). */
export function countAllOlder(quotedSchema: string, quotedTable: string, quotedColumn: string): string {
  return `SELECT count(*)::int8 AS n FROM ${quotedSchema}.${quotedTable} WHERE ${quotedColumn} < $1::timestamptz`;
}

/**
 * The rows of one batch: at most $2 rows older than $1, by physical address, skipping rows
 * another session has locked (they wait for the next batch or run rather than block this
 * one). `ctid = ANY (ARRAY(...))` runs as a TID scan; the outer condition is re-checked
 * against a row updated meanwhile (EvalPlanQual), so a row whose date moved forward stays.
 * Ordinary tables only: a ctid is unique within one table, not across partitions.
 */
function batchWhere(source: string, quotedColumn: string): string {
  return `ctid = ANY (ARRAY(SELECT ctid FROM ${source} WHERE ${quotedColumn} < $1::timestamptz LIMIT $2 FOR UPDATE SKIP LOCKED))
  AND ${quotedColumn} < $1::timestamptz`;
}

/** One batch of cleanup: deletes at most $2 rows older than $1; rowCount says how many. */
export function deleteOldBatch(quotedSchema: string, quotedTable: string, quotedColumn: string): string {
  const source = `${quotedSchema}.${quotedTable}`;
  return `DELETE FROM ${source} WHERE ${batchWhere(source, quotedColumn)}`;
}

/**
 * One batch of archiving, as one statement inside the caller's transaction: deletes at most
 * $2 rows older than $1 from the source and inserts them, by column name, into the archive;
 * returns how many were deleted and how many the archive took (equal unless a trigger on the
 * archive dropped rows, in which case the caller rolls back). OVERRIDING SYSTEM VALUE keeps
 * the rows' own values in an archive whose column is GENERATED ALWAYS AS IDENTITY.
 *
 * `returned` are the source's columns (quoted), `inserted` those of them the archive takes
 * (its generated columns compute their own values).
 */
export function archiveOldBatch(
  quotedSchema: string,
  quotedTable: string,
  quotedColumn: string,
  quotedArchiveSchema: string,
  quotedArchiveTable: string,
  returned: readonly string[],
  inserted: readonly string[],
): string {
  if (returned.length === 0 || inserted.length === 0) throw new Error('archive batch needs columns');
  const source = `${quotedSchema}.${quotedTable}`;
  const cols = inserted.join(', ');
  return `WITH moved AS (
  DELETE FROM ${source} WHERE ${batchWhere(source, quotedColumn)}
  RETURNING ${returned.join(', ')}
), archived AS (
  INSERT INTO ${quotedArchiveSchema}.${quotedArchiveTable} (${cols}) OVERRIDING SYSTEM VALUE
  SELECT ${cols} FROM moved
  RETURNING 1
)
SELECT (SELECT count(*) FROM moved)::int AS moved, (SELECT count(*) FROM archived)::int AS archived`;
}

/**
 * The archive table, created LIKE the source when absent: columns with their types and NOT
 * NULL, CHECK constraints, indexes (so its primary key keeps archived rows unique), storage
 * and comments. Not defaults, identity or generation expressions: archived rows keep the
 * values they had. Foreign keys are never copied by LIKE.
 */
export function createArchiveLike(quotedArchiveSchema: string, quotedArchiveTable: string, quotedSchema: string, quotedTable: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quotedArchiveSchema}.${quotedArchiveTable} (LIKE ${quotedSchema}.${quotedTable} INCLUDING CONSTRAINTS INCLUDING INDEXES INCLUDING STORAGE INCLUDING COMMENTS)`;
}

export const BEGIN = 'BEGIN';
export const COMMIT = 'COMMIT';
export const ROLLBACK = 'ROLLBACK';
