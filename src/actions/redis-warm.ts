import { Type, type Static } from '@sinclair/typebox';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import type { WarmQueryConfig } from '../config.ts';
import * as sql from '../sql/actions.ts';
import { defineAction, type ActionContext } from './action.ts';
import { checkSignal, pgTarget, plural, redisTarget, settle, withRedisDb } from './support.ts';

// Cache warming after a Redis restart (the runbook: "top 100 queries, active sessions").
// What to load is config, never alert input: config.actions.redis_warm[name] names a
// Postgres target, trusted SQL returning a key and a value column, a Redis target, a db and
// a TTL. The param only picks the entry by name.

const Params = Type.Object(
  {
    query: Type.String({ pattern: '^[A-Za-z0-9_.-]+$', maxLength: 100, description: 'name of an actions.redis_warm entry in config' }),
    batch_size: Type.Integer({ minimum: 1, maximum: 10_000, default: 500, description: 'rows fetched and SETs pipelined per round trip' }),
    max_rows: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 100_000, description: 'most rows one run loads' }),
  },
  { additionalProperties: false },
);
type P = Static<typeof Params>;


function warmQuery(ctx: ActionContext, name: string): WarmQueryConfig {
  const w = Object.hasOwn(ctx.config.actions.redisWarm, name) ? ctx.config.actions.redisWarm[name] : undefined;
  if (!w) {
    const known = Object.keys(ctx.config.actions.redisWarm);
    throw new Error(`no warm query named "${name}" in config actions.redis_warm (known: ${known.length ? known.join(', ') : 'none'})`);
  }
  return w;
}

function toText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

interface Pair {
  key: string;
  value: string;
}

/**
 * Runs the configured query in a read-only transaction through a cursor and hands its
 * rows to onBatch in batches; at most maxRows rows. Rows with a null or empty key, or a
 * null value, are skipped (counted).
 */
async function readRows(
  ctx: ActionContext,
  w: WarmQueryConfig,
  p: P,
  signal: AbortSignal,
  onBatch: (pairs: Pair[]) => Promise<void>,
): Promise<{ rows: number; skipped: number; truncated: boolean }> {
  const batchSize = p.batch_size;
  const maxRows = p.max_rows;
  return pgTarget(ctx, w.postgres).use(signal, async (c) => {
    await c.query(sql.BEGIN_READ_ONLY);
    try {
      // The extended protocol takes exactly one statement: the config's SQL cannot chain more.
      const declare: pg.QueryConfig & { queryMode: 'extended' } = { text: sql.declareWarmCursor(w.sql), queryMode: 'extended' };
      await c.query(declare);
      let rows = 0;
      let skipped = 0;
      let truncated = false;
      for (;;) {
        signal.throwIfAborted();
        const want = Math.min(batchSize, maxRows - rows + 1); // one more tells us whether there were more
        const res = await c.query<Record<string, unknown>>(sql.fetchWarmCursor(want));
        if (res.rows.length === 0) break;
        const first = res.rows[0] as Record<string, unknown>;
        for (const col of [w.keyColumn, w.valueColumn]) {
          if (!Object.hasOwn(first, col)) {
            throw new Error(`warm query "${p.query}" returns no column "${col}" (columns: ${res.fields.map((f) => f.name).join(', ')})`);
          }
        }
        let page = res.rows;
        if (rows + page.length > maxRows) {
          page = page.slice(0, maxRows - rows);
          truncated = true;
        }
        const pairs: Pair[] = [];
        for (const r of page) {
          const k = r[w.keyColumn];
          const v = r[w.valueColumn];
          if (k === null || k === undefined || v === null || v === undefined || toText(k) === '') skipped++;
          else pairs.push({ key: toText(k), value: toText(v) });
        }
        rows += page.length;
        if (pairs.length > 0) await onBatch(pairs);
        if (truncated || res.rows.length < want) break;
      }
      await c.query(sql.COMMIT);
      return { rows, skipped, truncated };
    } catch (err) {
      if (!signal.aborted) await c.query(sql.ROLLBACK).catch(() => {});
      throw err;
    }
  });
}

async function setBatch(c: Redis, pairs: Pair[], ttlMs: number): Promise<void> {
  const pipe = c.pipeline();
  for (const { key, value } of pairs) pipe.set(key, value, 'PX', ttlMs);
  const results = (await pipe.exec()) ?? [];
  const failed = results.find(([err]) => err);
  if (failed?.[0]) throw new Error(`SET failed: ${failed[0].message}`);
}

export default defineAction({
  name: 'redis-warm',
  description:
    'Warms a cache after a Redis restart: runs a query configured in actions.redis_warm (trusted SQL from the config ' +
    'file, in a read-only transaction, through a cursor) and loads its key/value rows into the configured Redis ' +
    'database with SET key value PX ttl, pipelined in batches; at most max_rows rows. Rows with a null or empty key or a ' +
    'null value are skipped; non-text values are stored as JSON. Idempotent: a re-run overwrites the same keys and ' +
    'renews their TTL. Verify: every key the query returns exists in Redis.',
  params: Params,
  idempotent: true,
  disruptive: false,
  // The Redis the query loads into: one action at a time per Redis server.
  targetKey: (p, config) => {
    const server = config?.actions.redisWarm[p.query]?.redis;
    return server === undefined ? `redis-warm:${p.query}` : `redis:${server}`;
  },

  async plan(ctx, p) {
    const w = warmQuery(ctx, p.query);
    redisTarget(ctx, w.redis);
    let keys = 0;
    const r = await readRows(ctx, w, p, checkSignal(), async (pairs) => {
      keys += pairs.length;
    });
    const more = r.truncated ? ` (first ${p.max_rows} rows; the query returns more)` : '';
    return {
      summary: `SET ${plural(keys, 'key')} with TTL ${w.ttlMs} ms in redis "${w.redis}" db ${w.db} from warm query "${p.query}" on "${w.postgres}"${more}`,
      details: { query: p.query, postgres: w.postgres, redis: w.redis, db: w.db, ttl_ms: w.ttlMs, keys, skipped_rows: r.skipped, truncated: r.truncated },
      nothingToDo: keys === 0,
    };
  },

  async run(ctx, p, signal) {
    const w = warmQuery(ctx, p.query);
    const target = redisTarget(ctx, w.redis);
    return withRedisDb(target, w.db, signal, async (c) => {
      let keys = 0;
      let batches = 0;
      const r = await readRows(ctx, w, p, signal, async (pairs) => {
        signal.throwIfAborted();
        await setBatch(c, pairs, w.ttlMs);
        keys += pairs.length;
        batches++;
      });
      return {
        summary:
          `loaded ${plural(keys, 'key')} into redis "${w.redis}" db ${w.db} with TTL ${w.ttlMs} ms ` +
          `(${plural(batches, 'pipelined batch', 'pipelined batches')})${r.truncated ? '; stopped at max_rows' : ''}`,
        details: { query: p.query, redis: w.redis, db: w.db, ttl_ms: w.ttlMs, keys, batches, skipped_rows: r.skipped, truncated: r.truncated },
      };
    });
  },

  async verify(ctx, p) {
    const w = warmQuery(ctx, p.query);
    const target = redisTarget(ctx, w.redis);
    const signal = checkSignal();
    return settle(
      () =>
        withRedisDb(target, w.db, signal, async (c) => {
          let expected = 0;
          let present = 0;
          await readRows(ctx, w, p, signal, async (pairs) => {
            expected += pairs.length;
            present += await c.exists(...pairs.map((x) => x.key));
          });
          return {
            fixed: present === expected,
            detail: `${present} of ${plural(expected, 'key')} from warm query "${p.query}" exist in redis "${w.redis}" db ${w.db}`,
          };
        }),
      2,
    );
  },
});
