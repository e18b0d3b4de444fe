// The retention collector's statement (src/collectors/postgres-retention.ts). The table and
// column come from config (actions.cleanup / actions.archive entries), are first checked
// against the catalog (src/retention/table.ts, sql.RELATION_AND_COLUMN in cleanup.ts) and
// reach these functions as the catalog's names, quoted with escapeIdentifier.

import { RELATION_AND_COLUMN } from './cleanup.ts';

/**
 * Age in seconds of the oldest row by its time column, by the database's clock (the clock
 * that dates the rows and the actions' cutoffs); 0 for an empty table or a table whose
 * oldest row is dated in the future. min() of an indexed column reads one index entry. A
 * timestamp (without time zone) is read in the session's TimeZone and a date as its
 * midnight, as the actions compare them.
 */
export function oldestRowAge(quotedSchema: string, quotedTable: string, quotedColumn: string): string {
  return `SELECT COALESCE(GREATEST(EXTRACT(EPOCH FROM now() - (SELECT min(${quotedColumn}) FROM ${quotedSchema}.${quotedTable})::timestamptz), 0), 0)::float8 AS age_seconds`;
}

/**
 * oldestRowAge of a table already checked, with the catalog check's rows for the same entry
 * ($1 schema or NULL, $2 table, $3 column or NULL: cleanup.ts's RELATION_AND_COLUMN) as
 * JSON in the same statement, so the caller can tell that the check still holds without a
 * round trip of its own.
 */
export function checkedOldestRowAge(quotedSchema: string, quotedTable: string, quotedColumn: string): string {
  return `SELECT (SELECT COALESCE(json_agg(r), '[]'::json) FROM (${RELATION_AND_COLUMN}) r) AS catalog,
       (${oldestRowAge(quotedSchema, quotedTable, quotedColumn)}) AS age_seconds`;
}
