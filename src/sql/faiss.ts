// SQL of the FAISS collector: the rows of an index's source table. The table and column
// names come from config, so they are never put into SQL as written: the catalog resolves
// them first (as bound parameters), and only the names the catalog returns, quoted with the
// driver's escapeIdentifier, are put into the count.

/**
 * The source table and its two columns, as the catalog knows them. $1 is the table as
 * written in config (`docs` or `schema.docs`; to_regclass applies the search_path and the
 * usual identifier rules and returns NULL when there is no such relation); $2 and $3 are the
 * id and vector column names, matched exactly. A column that does not exist gives NULL.
 */
export const RESOLVE_SOURCE = `
SELECT n.nspname AS schema_name,
       c.relname AS table_name,
       (SELECT a.attname FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped) AS id_column,
       (SELECT a.attname FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped) AS vector_column,
       (SELECT format_type(a.atttypid, NULL) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped) AS vector_type
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`;

/** Column types accepted for the vector column. */
export const VECTOR_TYPES: readonly string[] = ['real[]', 'double precision[]'];

export interface ResolvedSource {
  schema_name: string;
  table_name: string;
  id_column: string | null;
  vector_column: string | null;
  vector_type: string | null;
}

/**
 * Rows that have a vector: the ones the index should hold. `quote` is the driver's
 * escapeIdentifier and the names are the catalog's (RESOLVE_SOURCE), never config text.
 */
export function sourceRowCount(quote: (name: string) => string, s: { schema: string; table: string; vectorColumn: string }): string {
  return `SELECT count(*)::float8 AS rows FROM ${quote(s.schema)}.${quote(s.table)} WHERE ${quote(s.vectorColumn)} IS NOT NULL`;
}
