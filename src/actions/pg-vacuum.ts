import { Type, type Static } from '@sinclair/typebox';
import type pg from 'pg';
import * as sql from '../sql/actions.ts';
import { defineAction, type ActionContext } from './action.ts';
import { checkSignal, collectNotices, ObjectName, pgTarget, plural, settle, TargetName, withMaintenanceSession } from './support.ts';
import { num, str } from '../util/values.ts';

// VACUUM (ANALYZE) on the tables of the target's database with too many dead tuples, or on
// one named table. Table names are read from pg_stat_user_tables (a named table must match
// a row there exactly) and quoted with escapeIdentifier: a param is only ever a bound value.

const Params = Type.Object(
  {
    target: TargetName('postgres target (config postgres[].name); its database is the one vacuumed'),
    table: Type.Optional(ObjectName('vacuum this table only (exact name, as in pg_stat_user_tables.relname)')),
    schema: Type.Optional(ObjectName('schema of `table`, needed when the name exists in several')),
    dead_ratio: Type.Number({ minimum: 0, maximum: 1, default: 0.2, description: 'n_dead_tup / (n_live_tup + n_dead_tup) over which a table counts' }),
    min_dead_tuples: Type.Integer({ minimum: 1, maximum: 1e12, default: 1000, description: 'and at least this many dead tuples' }),
    max_tables: Type.Integer({ minimum: 1, maximum: 100, default: 10, description: 'most tables per run, worst first' }),
    timeout_seconds: Type.Integer({ minimum: 1, maximum: 86_400, default: 3600, description: 'statement_timeout per VACUUM' }),
  },
  { additionalProperties: false },
);
type P = Static<typeof Params>;


interface TableRow {
  schema: string;
  table: string;
  live: number;
  dead: number;
  dead_ratio: number;
}

const rowOf = (r: Record<string, unknown>): TableRow => ({
  schema: str(r['schema']),
  table: str(r['table']),
  live: num(r['live']) ?? 0,
  dead: num(r['dead']) ?? 0,
  dead_ratio: num(r['dead_ratio']) ?? 0,
});

const overThreshold = (t: TableRow, p: P): boolean =>
  t.dead >= p.min_dead_tuples && t.dead_ratio > p.dead_ratio;

const qualified = (t: { schema: string; table: string }): string => `${t.schema}.${t.table}`;

/** The named table, exactly as the catalog has it; a clear error when there is none or several. */
async function namedTable(c: pg.ClientBase, p: P): Promise<TableRow> {
  const rows = (await c.query<Record<string, unknown>>(sql.TABLE_BY_NAME, [p.table, p.schema ?? null])).rows.map(rowOf);
  const where = p.schema === undefined ? '' : ` in schema ${JSON.stringify(p.schema)}`;
  if (rows.length === 0) throw new Error(`no table named ${JSON.stringify(p.table)}${where} in pg_stat_user_tables of "${p.target}"`);
  if (rows.length > 1) {
    throw new Error(`table name ${JSON.stringify(p.table)} exists in several schemas (${rows.map((r) => r.schema).join(', ')}): give schema`);
  }
  return rows[0] as TableRow;
}

/** The tables this run takes: the named one, or those over the threshold (worst first). */
async function selectTables(c: pg.ClientBase, p: P): Promise<{ tables: TableRow[]; total: number }> {
  if (p.table !== undefined) return { tables: [await namedTable(c, p)], total: 1 };
  if (p.schema !== undefined) throw new Error('schema is only meaningful with table');
  const res = await c.query<Record<string, unknown>>(sql.TABLES_OVER_DEAD_RATIO, [
    p.min_dead_tuples,
    p.dead_ratio,
    p.max_tables,
  ]);
  return { tables: res.rows.map(rowOf), total: res.rows[0] ? (num(res.rows[0]['total']) ?? 0) : 0 };
}

async function check(ctx: ActionContext, p: P) {
  return pgTarget(ctx, p.target).use(checkSignal(), async (c) => {
    if (p.table !== undefined) {
      const t = await namedTable(c, p);
      return { over: overThreshold(t, p) ? [t] : [], checked: [t] };
    }
    const { tables, total } = await selectTables(c, p);
    return { over: tables, checked: tables, total };
  });
}

export default defineAction({
  name: 'pg-vacuum',
  description:
    'VACUUM (ANALYZE) on the tables of the target\'s database whose dead tuples exceed dead_ratio (and min_dead_tuples), ' +
    'worst first, at most max_tables per run; or on one named table, which must exist in pg_stat_user_tables (else a ' +
    'clear error). Identifiers come from the catalog, quoted. Online (no exclusive lock); each VACUUM has its own ' +
    'statement_timeout and stops when the run is aborted. A table the role may not vacuum is reported (Postgres ' +
    'skips it with a warning). Idempotent. Verify: no selected table (or the named table) is still over the threshold; ' +
    'VACUUM updates n_dead_tup itself, so the check needs no wait for statistics.',
  params: Params,
  idempotent: true,
  disruptive: false,
  targetKey: (p) => `postgres:${p.target}`,

  async plan(ctx, p) {
    const { tables, total } = await pgTarget(ctx, p.target).use(checkSignal(), (c) => selectTables(c, p));
    const more = total > tables.length ? ` (${total - tables.length} more over the threshold, next run)` : '';
    return {
      summary:
        tables.length === 0
          ? `VACUUM (ANALYZE): no table of "${p.target}" over dead ratio ${p.dead_ratio}`
          : `VACUUM (ANALYZE) ${plural(tables.length, 'table')} on "${p.target}": ${tables.map(qualified).join(', ')}${more}`,
      details: { tables, total },
      nothingToDo: tables.length === 0,
    };
  },

  async run(ctx, p, signal) {
    const timeoutMs = p.timeout_seconds * 1000;
    return withMaintenanceSession(pgTarget(ctx, p.target), signal, timeoutMs, async (c) => {
      const { tables } = await selectTables(c, p);
      const done: (TableRow & { warnings?: string[] })[] = [];
      for (const t of tables) {
        signal.throwIfAborted();
        const stmt = sql.vacuumAnalyze(c.escapeIdentifier(t.schema), c.escapeIdentifier(t.table));
        const { notices } = await collectNotices(c, () => c.query(stmt));
        const warnings = notices.filter((n) => n.startsWith('WARNING'));
        done.push(warnings.length > 0 ? { ...t, warnings } : t);
      }
      const skipped = done.filter((t) => t.warnings).length;
      return {
        summary:
          `VACUUM (ANALYZE) on ${plural(done.length, 'table')} of "${p.target}"` +
          (done.length ? `: ${done.map(qualified).join(', ')}` : '') +
          (skipped ? ` (${skipped} with warnings, e.g. skipped for lack of privileges)` : ''),
        details: { tables: done },
      };
    });
  },

  async verify(ctx, p) {
    return settle(async () => {
      const r = await check(ctx, p);
      return {
        fixed: r.over.length === 0,
        detail:
          r.over.length === 0
            ? p.table !== undefined
              ? `${qualified(r.checked[0] as TableRow)}: ${(r.checked[0] as TableRow).dead} dead tuples, ratio ${(r.checked[0] as TableRow).dead_ratio.toFixed(3)}`
              : `no table over dead ratio ${p.dead_ratio}`
            : `still over the threshold: ${r.over.map((t) => `${qualified(t)} (${t.dead} dead, ratio ${t.dead_ratio.toFixed(3)})`).join(', ')}`,
      };
    }, 4);
  },
});
