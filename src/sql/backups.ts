// Every SQL statement the backup actions run (restore-test), named. Values are bound
// parameters. CREATE/DROP DATABASE and the row counts must carry identifiers in their text:
// the functions below take names that come from the catalog (or that restore-test generated
// itself) already quoted by the driver's escapeIdentifier / escapeLiteral.

/** Scratch databases restore-test creates are named with this prefix (and only they). */
export const SCRATCH_PREFIX = 'hk_restore_test_';

/**
 * The ordinary or partitioned table a configured name denotes: $1 is "table" or
 * "schema.table", compared as a value with the catalog's names. System schemas excluded.
 */
export const RESOLVE_TABLE = `
SELECT n.nspname AS schema, c.relname AS table
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
   AND (c.relname = $1 OR n.nspname || '.' || c.relname = $1)
 ORDER BY 1, 2
 LIMIT 10`;

/** Whether $1.$2 exists as a table (in the restored scratch database). */
export const TABLE_EXISTS = `
SELECT EXISTS (
  SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p') AND n.nspname = $1 AND c.relname = $2) AS exists`;

/** The database the connection is in, with what a scratch copy of it is created with. */
export const CURRENT_DATABASE = `
SELECT d.datname AS name, pg_encoding_to_char(d.encoding) AS encoding, d.datcollate AS collate, d.datctype AS ctype,
       current_setting('server_version_num')::int AS version,
       (SELECT r.rolcreatedb OR r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) AS can_create
  FROM pg_database d
 WHERE d.datname = current_database()`;

export const DATABASE_EXISTS = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists`;

/**
 * Scratch databases left by a restore-test that died (crash, kill) before it could drop
 * them: our prefix, and nobody connected. restore-tests never overlap (one target key).
 */
export const LEFTOVER_SCRATCH = `
SELECT d.datname AS name
  FROM pg_database d
 WHERE d.datname LIKE '${SCRATCH_PREFIX.replace(/_/g, '\\_')}%'
   AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)
 ORDER BY 1
 LIMIT 20`;

/** CREATE DATABASE from template0 with the source's encoding and locale (all arguments quoted by the caller). */
export function createDatabase(quotedName: string, encodingLiteral: string, collateLiteral: string, ctypeLiteral: string): string {
  return `CREATE DATABASE ${quotedName} TEMPLATE template0 ENCODING ${encodingLiteral} LC_COLLATE ${collateLiteral} LC_CTYPE ${ctypeLiteral}`;
}

/** FORCE (PG 13+) also ends sessions still connected to it, e.g. a killed pg_restore's backend. */
export function dropDatabase(quotedName: string, force: boolean): string {
  return `DROP DATABASE IF EXISTS ${quotedName}${force ? ' WITH (FORCE)' : ''}`;
}

/** An exact row count of a table named by the catalog, quoted by the caller. */
export function countRows(quotedSchema: string, quotedTable: string): string {
  return `SELECT count(*)::bigint AS n FROM ${quotedSchema}.${quotedTable}`;
}
