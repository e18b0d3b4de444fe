import { Type, type Static } from '@sinclair/typebox';
import type { Redis } from 'ioredis';
import type { RedisTarget } from '../targets/redis.ts';
import { defineAction, type ActionContext } from './action.ts';
import { checkSignal, plural, redisMemory, redisTarget, settle, TargetName, withRedisDb } from './support.ts';

// The runbook's cache flush. Only databases the config declares as caches (cache_dbs) can
// be flushed; sessions or anything else in other databases are never touched. Every run
// uses its own connection to the database (see withRedisDb), never KEYS.

const Params = Type.Object(
  {
    target: TargetName('redis target (config redis[].name)'),
    db: Type.Integer({ minimum: 0, maximum: 15, description: 'database number; must be in the target\'s cache_dbs' }),
    pattern: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, description: 'flush only keys matching this glob (SCAN MATCH), not the whole database' }),
    ),
    batch_size: Type.Integer({ minimum: 1, maximum: 10_000, default: 500, description: 'keys per UNLINK' }),
    scan_count: Type.Integer({ minimum: 10, maximum: 10_000, default: 1000, description: 'SCAN COUNT hint' }),
    max_keys: Type.Integer({ minimum: 1, maximum: 100_000_000, default: 1_000_000, description: 'most keys one run unlinks' }),
    memory_fraction: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.75, description: 'verify: used_memory below this fraction of maxmemory' }),
  },
  { additionalProperties: false },
);
type P = Static<typeof Params>;

// SCAN always ends, but a keyspace written to faster than we walk it must not keep us forever.
const MAX_SCAN_CALLS = 1_000_000;

function cacheTarget(ctx: ActionContext, p: P): RedisTarget {
  const t = redisTarget(ctx, p.target);
  if (!t.cacheDbs.includes(p.db)) {
    const declared = t.cacheDbs.length === 0 ? 'none' : t.cacheDbs.join(', ');
    throw new Error(`refusing to flush redis "${p.target}" db ${p.db}: it is not declared a cache (cache_dbs: ${declared})`);
  }
  return t;
}

/** Walks SCAN MATCH over the database; calls onKeys for each non-empty page until it returns false. */
async function scanPattern(c: Redis, p: P, signal: AbortSignal, onKeys: (keys: string[]) => Promise<boolean>): Promise<boolean> {
  const count = p.scan_count;
  let cursor = '0';
  for (let calls = 0; calls < MAX_SCAN_CALLS; calls++) {
    signal.throwIfAborted();
    const [next, keys] = await c.scan(cursor, 'MATCH', p.pattern as string, 'COUNT', count);
    if (keys.length > 0 && !(await onKeys(keys))) return false;
    cursor = next;
    if (cursor === '0') return true;
  }
  return false;
}

/** Counts keys matching the pattern, up to `limit` (then stops: "at least"). */
async function countMatches(c: Redis, p: P, signal: AbortSignal, limit: number): Promise<{ count: number; complete: boolean }> {
  const seen = new Set<string>();
  const complete = await scanPattern(c, p, signal, async (keys) => {
    for (const k of keys) seen.add(k);
    return seen.size < limit;
  });
  return { count: Math.min(seen.size, limit), complete };
}

export default defineAction({
  name: 'redis-flush',
  description:
    'Frees cache memory: FLUSHDB ASYNC on a Redis database declared a cache (cache_dbs), or with `pattern` only the ' +
    'matching keys, by SCAN MATCH + UNLINK in batches (never KEYS). Refuses any database not declared a cache, in plan ' +
    'and run. Uses a dedicated connection per run, so the shared connection never changes database. Idempotent: a ' +
    'second run finds fewer or no keys. A pattern run unlinks at most max_keys keys. Verify: used_memory below ' +
    'memory_fraction of maxmemory (or, without maxmemory, the database empty); with a pattern, no key left matching.',
  params: Params,
  idempotent: true,
  disruptive: false,
  targetKey: (p) => `redis:${p.target}`,

  async plan(ctx, p) {
    const t = cacheTarget(ctx, p);
    const signal = checkSignal();
    return withRedisDb(t, p.db, signal, async (c) => {
      const mem = await redisMemory(c);
      const memory = { used_bytes: mem.used, max_bytes: mem.max };
      if (p.pattern === undefined) {
        const keys = await c.dbsize();
        return {
          summary: `FLUSHDB ASYNC on redis "${p.target}" cache db ${p.db} (${plural(keys, 'key')})`,
          details: { target: p.target, db: p.db, keys, memory },
          nothingToDo: keys === 0,
        };
      }
      const maxKeys = p.max_keys;
      const { count, complete } = await countMatches(c, p, signal, maxKeys);
      const n = complete ? `${count}` : `at least ${count}`;
      return {
        summary: `UNLINK keys matching ${JSON.stringify(p.pattern)} in redis "${p.target}" cache db ${p.db} (${n} keys, at most ${maxKeys})`,
        details: { target: p.target, db: p.db, pattern: p.pattern, matching_keys: count, complete, max_keys: maxKeys, memory },
        nothingToDo: count === 0,
      };
    });
  },

  async run(ctx, p, signal) {
    const t = cacheTarget(ctx, p);
    return withRedisDb(t, p.db, signal, async (c) => {
      if (p.pattern === undefined) {
        const before = await c.dbsize();
        signal.throwIfAborted();
        await c.flushdb('ASYNC');
        return {
          summary: `flushed redis "${p.target}" cache db ${p.db} (${plural(before, 'key')}, memory freed in the background)`,
          details: { target: p.target, db: p.db, keys: before },
        };
      }
      const batchSize = p.batch_size;
      const maxKeys = p.max_keys;
      let batch: string[] = [];
      let unlinked = 0;
      let sent = 0;
      let batches = 0;
      const flush = async (): Promise<void> => {
        if (batch.length === 0) return;
        signal.throwIfAborted();
        unlinked += await c.unlink(...batch);
        sent += batch.length;
        batches++;
        batch = [];
      };
      const complete = await scanPattern(c, p, signal, async (keys) => {
        for (const k of keys) {
          if (sent + batch.length >= maxKeys) return false;
          batch.push(k);
          if (batch.length >= batchSize) await flush();
        }
        return true;
      });
      await flush();
      return {
        summary:
          `unlinked ${plural(unlinked, 'key')} matching ${JSON.stringify(p.pattern)} in redis "${p.target}" cache db ${p.db} ` +
          `(${plural(batches, 'batch', 'batches')})${complete ? '' : `; stopped at max_keys ${maxKeys}, more may remain`}`,
        details: { target: p.target, db: p.db, pattern: p.pattern, unlinked, batches, complete },
      };
    });
  },

  async verify(ctx, p) {
    const t = cacheTarget(ctx, p);
    const fraction = p.memory_fraction;
    return settle(() =>
      withRedisDb(t, p.db, checkSignal(), async (c) => {
        if (p.pattern !== undefined) {
          const { count, complete } = await countMatches(c, p, checkSignal(), 1000);
          return {
            fixed: count === 0,
            detail: count === 0 ? `no key matches ${JSON.stringify(p.pattern)} in db ${p.db}` : `${complete ? '' : 'at least '}${plural(count, 'key')} still match ${JSON.stringify(p.pattern)} in db ${p.db}`,
          };
        }
        const mem = await redisMemory(c);
        if (mem.max === 0) {
          const keys = await c.dbsize();
          return { fixed: keys === 0, detail: `no maxmemory set; db ${p.db} holds ${plural(keys, 'key')}` };
        }
        const ratio = mem.used / mem.max;
        return {
          fixed: ratio < fraction,
          detail: `used_memory ${mem.used} bytes is ${(ratio * 100).toFixed(1)}% of maxmemory ${mem.max} (threshold ${(fraction * 100).toFixed(1)}%)`,
        };
      }),
    );
  },
});
