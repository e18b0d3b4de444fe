import pg from 'pg';
import type { CleanupConfig } from '../config.ts';
import * as sql from '../sql/cleanup.ts';
import { str } from '../util/values.ts';

// The catalog check of a retention entry's table and time column (actions.cleanup.<entry>,
// actions.archive.<entry>), shared by the actions that keep retention (cleanup-old-rows,
// archive-old-rows: src/actions/old-rows.ts) and the collector that watches it
// (src/collectors/postgres-retention.ts), so both accept and refuse exactly the same tables.

/** schema.table as SQL would spell it, for messages: exact, and unambiguous with any name. */
export const display = (schema: string, table: string): string => `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(table)}`;

export interface Relation {
  schema: string;
  table: string;
  kind: string;
  oid: string;
  column: string | undefined;
  columnType: string | undefined;
  baseType: string | undefined;
  baseTypeSchema: string | undefined;
  canSelect: boolean;
  canDelete: boolean;
  canInsert: boolean;
}

/** What the catalog says is wrong with an entry's table or column (not a failed query). */
export class TableCheckError extends Error {}

const KINDS: Record<string, string> = { r: 'table', p: 'partitioned table', v: 'view', m: 'materialized view', f: 'foreign table' };
const TIME_TYPES = ['timestamp', 'timestamptz', 'date'];

/** Relations with this exact name (one per schema, or the one in `schema`), as the catalog has them. */
export async function lookUp(c: pg.ClientBase, schema: string | undefined, table: string, column: string | undefined): Promise<Relation[]> {
  const res = await c.query<Record<string, unknown>>(sql.RELATION_AND_COLUMN, [schema ?? null, table, column ?? null]);
  return res.rows.map((r) => ({
    schema: str(r['schema']),
    table: str(r['table']),
    kind: str(r['kind']),
    oid: str(r['oid']),
    column: r['column'] === null ? undefined : str(r['column']),
    columnType: r['column_type'] === null ? undefined : str(r['column_type']),
    baseType: r['base_type'] === null ? undefined : str(r['base_type']),
    baseTypeSchema: r['base_type_schema'] === null ? undefined : str(r['base_type_schema']),
    canSelect: r['can_select'] === true,
    canDelete: r['can_delete'] === true,
    canInsert: r['can_insert'] === true,
  }));
}

/**
 * The entry's table and column, checked against the catalog: exactly one ordinary table of
 * that name (in its schema when config gives one), with that column, of type timestamp,
 * timestamptz or date, which our role may SELECT from and, unless `readOnly` (the collector
 * only reads), DELETE from. Anything else is a TableCheckError that names what is wrong.
 */
export async function sourceTable(
  c: pg.ClientBase,
  e: CleanupConfig,
  entryPath: string,
  action: string,
  opts: { readOnly?: boolean } = {},
): Promise<Relation & { column: string }> {
  const found = await lookUp(c, e.schema, e.table, e.column);
  const where = e.schema === undefined ? '' : ` in schema ${pg.escapeIdentifier(e.schema)}`;
  if (found.length === 0) {
    throw new TableCheckError(`${entryPath}: no table ${pg.escapeIdentifier(e.table)}${where} in the catalog of postgres target "${e.postgres}"`);
  }
  if (found.length > 1) {
    throw new TableCheckError(
      `${entryPath}: table ${pg.escapeIdentifier(e.table)} exists in several schemas (${found.map((f) => pg.escapeIdentifier(f.schema)).join(', ')}): set schema`,
    );
  }
  const t = found[0] as Relation;
  const name = display(t.schema, t.table);
  if (t.kind !== 'r') {
    const hint = t.kind === 'p' ? ' (for a partitioned table, detach and drop old partitions instead)' : '';
    throw new TableCheckError(`${entryPath}: ${name} is a ${KINDS[t.kind] ?? t.kind}; ${action} works on ordinary tables only${hint}`);
  }
  if (t.column === undefined) throw new TableCheckError(`${entryPath}: ${name} has no column ${pg.escapeIdentifier(e.column)}`);
  if (t.baseTypeSchema !== 'pg_catalog' || !TIME_TYPES.includes(t.baseType ?? '')) {
    throw new TableCheckError(`${entryPath}: column ${pg.escapeIdentifier(t.column)} of ${name} is ${t.columnType}, not timestamp, timestamptz or date`);
  }
  if (!t.canSelect) throw new TableCheckError(`${entryPath}: our role may not SELECT from ${name}`);
  if (!opts.readOnly && !t.canDelete) throw new TableCheckError(`${entryPath}: our role may not DELETE from ${name}`);
  return { ...t, column: t.column };
}
