// SQL of the FAISS maintenance actions (faiss-rebuild, faiss-retrain, faiss-restore's fallback):
// the source table as the catalog knows it, and the cursor that streams its rows. Table and
// column names come from config: the catalog resolves them first (bound parameters), and
// only the catalog's names, quoted with the driver's escapeIdentifier, go into the cursor.

/**
 * The source relation and its id and vector columns, with their types. $1 is the table as
 * written in config (`docs` or `schema.docs`, resolved by to_regclass with the search_path);
 * $2 and $3 the id and vector column names, matched exactly. Missing columns give NULLs.
 */
export const RESOLVE_REBUILD_SOURCE = `
SELECT n.nspname AS schema_name,
       c.relname AS table_name,
       ida.attname AS id_column,
       format_type(ida.atttypid, NULL) AS id_type,
       va.attname AS vector_column,
       format_type(va.atttypid, NULL) AS vector_type
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute ida ON ida.attrelid = c.oid AND ida.attname = $2 AND ida.attnum > 0 AND NOT ida.attisdropped
LEFT JOIN pg_attribute va ON va.attrelid = c.oid AND va.attname = $3 AND va.attnum > 0 AND NOT va.attisdropped
WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`;

export interface RebuildSourceRow {
  schema_name: string;
  table_name: string;
  id_column: string | null;
  id_type: string | null;
  vector_column: string | null;
  vector_type: string | null;
}

/** Id column types the label → id map can hold (int64). */
export const ID_TYPES: readonly string[] = ['smallint', 'integer', 'bigint'];
/** Vector column types a rebuild reads (double precision is cast to real on the server). */
export const REBUILD_VECTOR_TYPES: readonly string[] = ['real[]', 'double precision[]'];

/** The catalog's names of a checked source, as the child process receives them. */
export interface RebuildSource {
  schema: string;
  table: string;
  idColumn: string;
  vectorColumn: string;
  /** Cast the vector to real[] on the server (the column is double precision[]). */
  castToReal: boolean;
}

/** The snapshot the whole read sees; read only, so it can run on a replica too. */
export const BEGIN_READ = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';
export const COMMIT = 'COMMIT';
/** Per-transaction bounds: a hung child is dropped by the server, not kept open for ever. */
export const SET_LOCAL_IDLE_TIMEOUT = `SET LOCAL idle_in_transaction_session_timeout = '600s'`;

/**
 * Let the server spread the per-element encoding (array_send, about 30 ns per float, the
 * largest part of the read) over its parallel workers: the planner's default costs never
 * choose a parallel plan for a query that returns every row. Transaction-scoped; the
 * server's worker limits (max_parallel_workers_per_gather, which an operator can set to 0
 * for housekeeper's role) still decide how many, if any.
 */
export const SET_LOCAL_PARALLEL_READ: readonly string[] = [
  'SET LOCAL parallel_setup_cost = 0',
  'SET LOCAL parallel_tuple_cost = 0',
];

/**
 * The rows that have a vector, as binary COPY: (id int8, vector as array_send() bytea, i.e.
 * PostgreSQL's binary array format: big-endian float4 elements, each with a length word).
 * array_send in the SELECT list runs in the parallel workers; a bare real[] column would be
 * encoded by the leader alone while it writes the COPY stream. `quote` is the driver's
 * escapeIdentifier; the names are the catalog's.
 */
export function copyRebuildRows(quote: (name: string) => string, s: RebuildSource): string {
  const vec = s.castToReal ? `${quote(s.vectorColumn)}::real[]` : quote(s.vectorColumn);
  return (
    `COPY (SELECT ${quote(s.idColumn)}::int8, array_send(${vec}) ` +
    `FROM ${quote(s.schema)}.${quote(s.table)} WHERE ${quote(s.vectorColumn)} IS NOT NULL) TO STDOUT (FORMAT binary)`
  );
}
