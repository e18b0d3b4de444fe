import { Type, type Static } from '@sinclair/typebox';
import type pg from 'pg';
import * as sql from '../sql/actions.ts';
import { defineAction } from './action.ts';
import { checkSignal, collectNotices, ObjectName, pgTarget, plural, settle, TargetName, withMaintenanceSession } from './support.ts';
import { num, str } from '../util/values.ts';

// REINDEX INDEX CONCURRENTLY on named indexes (each must exist in pg_class/pg_index, outside
// the system schemas) or on the b-tree indexes the estimate in sql.BLOATED_INDEXES calls
// bloated. Names used in the statement are the catalog's, quoted.

const Params = Type.Object(
  {
    target: TargetName('postgres target (config postgres[].name); its database holds the indexes'),
    indexes: Type.Optional(
      Type.Array(ObjectName('index name (exact, as in pg_class.relname)'), { minItems: 1, maxItems: 20, description: 'rebuild these indexes' }),
    ),
    schema: Type.Optional(ObjectName('schema of `indexes`, needed when a name exists in several')),
    min_bloat_ratio: Type.Number({ minimum: 0, maximum: 0.99, default: 0.5, description: 'without indexes: estimated wasted share of the index over which it is rebuilt' }),
    min_size_bytes: Type.Integer({ minimum: 0, maximum: 1e15, default: 10 * 1024 * 1024, description: 'without indexes: ignore smaller indexes' }),
    max_indexes: Type.Integer({ minimum: 1, maximum: 50, default: 5, description: 'most indexes per run, most wasted bytes first' }),
    timeout_seconds: Type.Integer({ minimum: 1, maximum: 86_400, default: 3600, description: 'statement_timeout per REINDEX' }),
  },
  { additionalProperties: false },
);
type P = Static<typeof Params>;


interface IndexRow {
  schema: string;
  index: string;
  table: string;
  bytes: number;
  bloat_ratio?: number;
  expected_bytes?: number;
}

const qualified = (i: { schema: string; index: string }): string => `${i.schema}.${i.index}`;

async function namedIndexes(c: pg.ClientBase, p: P, names: string[]): Promise<IndexRow[]> {
  const out: IndexRow[] = [];
  for (const name of [...new Set(names)]) {
    const rows = (await c.query<Record<string, unknown>>(sql.INDEX_BY_NAME, [name, p.schema ?? null])).rows;
    const where = p.schema === undefined ? '' : ` in schema ${JSON.stringify(p.schema)}`;
    if (rows.length === 0) throw new Error(`no index named ${JSON.stringify(name)}${where} in pg_class of "${p.target}" (system schemas excluded)`);
    if (rows.length > 1) throw new Error(`index name ${JSON.stringify(name)} exists in several schemas (${rows.map((r) => str(r['schema'])).join(', ')}): give schema`);
    const r = rows[0] as Record<string, unknown>;
    out.push({ schema: str(r['schema']), index: str(r['index']), table: str(r['table']), bytes: num(r['bytes']) ?? 0 });
  }
  return out;
}

async function bloated(c: pg.ClientBase, p: P): Promise<{ indexes: IndexRow[]; total: number }> {
  const res = await c.query<Record<string, unknown>>(sql.BLOATED_INDEXES, [
    p.min_size_bytes,
    p.min_bloat_ratio,
    p.max_indexes,
  ]);
  return {
    indexes: res.rows.map((r) => ({
      schema: str(r['schema']),
      index: str(r['index']),
      table: str(r['table']),
      bytes: num(r['bytes']) ?? 0,
      expected_bytes: Math.round(num(r['expected_bytes']) ?? 0),
      bloat_ratio: Math.round((num(r['bloat_ratio']) ?? 0) * 1000) / 1000,
    })),
    total: res.rows[0] ? (num(res.rows[0]['total']) ?? 0) : 0,
  };
}

async function selectIndexes(c: pg.ClientBase, p: P): Promise<{ indexes: IndexRow[]; total: number }> {
  if (p.indexes !== undefined) {
    const indexes = await namedIndexes(c, p, p.indexes);
    return { indexes, total: indexes.length };
  }
  if (p.schema !== undefined) throw new Error('schema is only meaningful with indexes');
  return bloated(c, p);
}

async function validity(c: pg.ClientBase, list: { schema: string; index: string }[]) {
  const res = await c.query<Record<string, unknown>>(sql.INDEX_VALIDITY, [list.map((i) => i.schema), list.map((i) => i.index)]);
  return res.rows.map((r) => ({
    name: `${str(r['schema'])}.${str(r['index'])}`,
    exists: r['valid'] !== null,
    valid: r['valid'] === true,
    leftovers: Array.isArray(r['leftovers']) ? (r['leftovers'] as unknown[]).map(str) : [],
  }));
}

export default defineAction({
  name: 'pg-reindex',
  description:
    'REINDEX INDEX CONCURRENTLY on the named indexes (each must exist in pg_class/pg_index outside the system schemas, ' +
    'else a clear error) or, without names, on the b-tree indexes of at least min_size_bytes whose size exceeds a simple ' +
    'estimate of their rebuilt size by min_bloat_ratio (estimate from reltuples and pg_stats column widths, see ' +
    'src/sql/actions.ts), most wasted bytes first, at most max_indexes. Concurrent: reads and writes go on, but it ' +
    'costs I/O and waits for running transactions, hence disruptive (maintenance windows). Idempotent: a re-run ' +
    'rebuilds again. An interrupted run can leave an invalid <index>_ccnew index, which verify reports (drop it by hand). ' +
    'Verify: each index exists and is valid (pg_index.indisvalid) with no _ccnew leftover; without names, also no index ' +
    'over the threshold.',
  params: Params,
  idempotent: true,
  disruptive: true,
  targetKey: (p) => `postgres:${p.target}`,

  async plan(ctx, p) {
    const { indexes, total } = await pgTarget(ctx, p.target).use(checkSignal(), (c) => selectIndexes(c, p));
    const more = total > indexes.length ? ` (${total - indexes.length} more over the threshold, next run)` : '';
    return {
      summary:
        indexes.length === 0
          ? `REINDEX CONCURRENTLY: no index of "${p.target}" over bloat ratio ${p.min_bloat_ratio}`
          : `REINDEX INDEX CONCURRENTLY ${plural(indexes.length, 'index', 'indexes')} on "${p.target}": ${indexes.map(qualified).join(', ')}${more}`,
      details: { indexes, total },
      nothingToDo: indexes.length === 0,
    };
  },

  async run(ctx, p, signal) {
    const timeoutMs = p.timeout_seconds * 1000;
    return withMaintenanceSession(pgTarget(ctx, p.target), signal, timeoutMs, async (c) => {
      const { indexes } = await selectIndexes(c, p);
      const done: (IndexRow & { bytes_after: number; notices?: string[] })[] = [];
      for (const i of indexes) {
        signal.throwIfAborted();
        const stmt = sql.reindexConcurrently(c.escapeIdentifier(i.schema), c.escapeIdentifier(i.index));
        const { notices } = await collectNotices(c, () => c.query(stmt));
        const after = (await c.query<Record<string, unknown>>(sql.INDEX_BY_NAME, [i.index, i.schema])).rows[0];
        const entry = { ...i, bytes_after: num(after?.['bytes']) ?? 0 };
        done.push(notices.length ? { ...entry, notices } : entry);
      }
      return {
        summary:
          `REINDEX INDEX CONCURRENTLY on ${plural(done.length, 'index', 'indexes')} of "${p.target}"` +
          (done.length ? `: ${done.map((i) => `${qualified(i)} ${i.bytes} → ${i.bytes_after} bytes`).join(', ')}` : ''),
        details: { indexes: done },
      };
    });
  },

  async verify(ctx, p) {
    return settle(
      () =>
        pgTarget(ctx, p.target).use(checkSignal(), async (c) => {
          if (p.indexes !== undefined) {
            const named = await namedIndexes(c, p, p.indexes).catch(() => undefined);
            const list = named ?? p.indexes.map((index) => ({ schema: p.schema ?? 'public', index }));
            const v = await validity(c, list);
            const bad = v.filter((x) => !x.exists || !x.valid || x.leftovers.length > 0);
            return {
              fixed: bad.length === 0,
              detail:
                bad.length === 0
                  ? `valid: ${v.map((x) => x.name).join(', ')}`
                  : bad
                      .map((x) => (!x.exists ? `${x.name} missing` : !x.valid ? `${x.name} invalid` : `${x.name} has invalid leftover ${x.leftovers.join(', ')}`))
                      .join('; '),
            };
          }
          const { indexes } = await bloated(c, p);
          return {
            fixed: indexes.length === 0,
            detail:
              indexes.length === 0
                ? `no index over bloat ratio ${p.min_bloat_ratio}`
                : `still over the threshold: ${indexes.map((i) => `${qualified(i)} (${i.bloat_ratio})`).join(', ')}`,
          };
        }),
      2,
    );
  },
});
