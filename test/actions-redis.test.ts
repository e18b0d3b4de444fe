import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Value } from '@sinclair/typebox/value';
import type { ActionContext } from '../src/actions/action.ts';
import { closeTargets, type Targets } from '../src/targets/index.ts';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { startRedis, type RedisServer } from './harness/redis.ts';
import { action, actionContext, params } from './helpers/actions.ts';

// redis-flush and redis-warm against a real Redis 7.0 (and a real Postgres for the warm
// query): each does its real work, verify() confirms it, plan() changes nothing.

let redis: RedisServer;
let primary: PgServer;
let targets: Targets;
let ctx: ActionContext;
const admin: Redis[] = [];

/** A test-side connection to one database (never the action's). */
async function db(n: number): Promise<Redis> {
  const c = new Redis(redis.url(n), { lazyConnect: true, maxRetriesPerRequest: 1 });
  c.on('error', () => {});
  await c.connect();
  admin.push(c);
  return c;
}

async function memoryRatio(c: Redis): Promise<number> {
  const info = await c.info('memory');
  const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
  const max = Number(/^maxmemory:(\d+)/m.exec(info)?.[1]);
  return used / max;
}

before(async () => {
  [redis, primary] = await Promise.all([startRedis({ maxmemory: '16mb', maxmemoryPolicy: 'noeviction' }), startPostgres()]);
  const c = new pg.Client({ connectionString: primary.url({ db: 'app' }) });
  await c.connect();
  await c.query(`CREATE TABLE top_queries (id int PRIMARY KEY, answer text, hits int NOT NULL)`);
  await c.query(`INSERT INTO top_queries SELECT g, 'answer ' || g, 1000 - g FROM generate_series(1, 250) g`);
  await c.query(`INSERT INTO top_queries VALUES (999, NULL, 0)`); // a null value: skipped
  await c.end();
  ctx = actionContext(`
postgres:
  - name: primary
    url: ${primary.url({ db: 'app' })}
redis:
  - name: cache
    url: ${redis.url(0)}
    cache_dbs: [1, 2]
actions:
  redis_warm:
    top:
      postgres: primary
      sql: "SELECT 'answer:' || id AS key, answer AS value FROM top_queries ORDER BY hits DESC;"
      redis: cache
      db: 3
      ttl: 10m
    chained:
      postgres: primary
      sql: "SELECT 'k' AS key, 'v' AS value; DROP TABLE top_queries"
      redis: cache
      db: 3
    writes:
      postgres: primary
      sql: "WITH d AS (DELETE FROM top_queries RETURNING id) SELECT id::text AS key, id::text AS value FROM d"
      redis: cache
      db: 3
`);
  targets = ctx.targets;
  await targets.redis[0]?.ready(AbortSignal.timeout(10_000));
});

after(async () => {
  for (const c of admin) c.disconnect();
  if (targets) await closeTargets(targets);
  await Promise.all([redis?.destroy(), primary?.destroy()]);
});

test('redis-flush empties a cache db with FLUSHDB ASYNC; other dbs and the shared connection stay as they were', async () => {
  const flush = action('redis-flush');
  const db0 = await db(0);
  const db1 = await db(1);
  await db0.set('session:1', 'alice');
  // Fill the cache db past 75% of maxmemory (16 MB), 64 KB values, bounded.
  const value = 'x'.repeat(64 * 1024);
  for (let i = 0; i < 400 && (await memoryRatio(db1)) < 0.85; i++) {
    const pipe = db1.pipeline();
    for (let j = 0; j < 10; j++) pipe.set(`page:${i}:${j}`, value);
    await pipe.exec();
  }
  assert.ok((await memoryRatio(db1)) >= 0.85, 'memory filled past the threshold');
  const keys = await db1.dbsize();
  const p = params(flush, { target: 'cache', db: 1 });

  const before = await flush.verify(ctx, p);
  assert.equal(before.fixed, false, before.detail);

  const plan = await flush.plan(ctx, p);
  assert.equal(plan.nothingToDo, false);
  assert.match(plan.summary, new RegExp(`FLUSHDB ASYNC on redis "cache" cache db 1 \\(${keys} keys\\)`));
  assert.equal(await db1.dbsize(), keys, 'plan changed nothing');

  const r = await flush.run(ctx, p, AbortSignal.timeout(30_000));
  assert.match(r.summary, /flushed/);
  const v = await flush.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  assert.equal(await db1.dbsize(), 0);
  assert.equal(await db0.get('session:1'), 'alice', 'a non-cache db is untouched');
  // The shared connection was never SELECTed away from its db 0.
  assert.equal(await targets.redis[0]?.client.get('session:1'), 'alice');

  const again = await flush.plan(ctx, p);
  assert.equal(again.nothingToDo, true, 'an empty db: nothing to do');
});

test('redis-flush with a pattern unlinks only the matching keys, in batches', async () => {
  const flush = action('redis-flush');
  const db2 = await db(2);
  const pipe = db2.pipeline();
  for (let i = 0; i < 1200; i++) pipe.set(`q:${i}`, 'v');
  for (let i = 0; i < 50; i++) pipe.set(`keep:${i}`, 'v');
  await pipe.exec();
  const p = params(flush, { target: 'cache', db: 2, pattern: 'q:*', batch_size: 100, scan_count: 50 });

  const plan = await flush.plan(ctx, p);
  assert.equal(plan.details?.['matching_keys'], 1200);
  assert.equal(await db2.dbsize(), 1250, 'plan changed nothing');
  assert.equal((await flush.verify(ctx, p)).fixed, false);

  const r = await flush.run(ctx, p, AbortSignal.timeout(30_000));
  assert.equal(r.details?.['unlinked'], 1200);
  assert.ok(Number(r.details?.['batches']) >= 12, `batches of at most 100: ${String(r.details?.['batches'])}`);
  const v = await flush.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  assert.equal(await db2.dbsize(), 50);
  assert.equal(await db2.exists('keep:0', 'keep:49'), 2);
});

test('redis-flush with a pattern stops at max_keys and says so; verify sees what is left', async () => {
  const flush = action('redis-flush');
  const db2 = await db(2);
  const pipe = db2.pipeline();
  for (let i = 0; i < 300; i++) pipe.set(`m:${i}`, 'v');
  await pipe.exec();
  const p = params(flush, { target: 'cache', db: 2, pattern: 'm:*', max_keys: 100, batch_size: 30 });
  const r = await flush.run(ctx, p, AbortSignal.timeout(30_000));
  assert.equal(r.details?.['unlinked'], 100);
  assert.equal(r.details?.['complete'], false);
  assert.match(r.summary, /more may remain/);
  const v = await flush.verify(ctx, p);
  assert.equal(v.fixed, false);
  assert.match(v.detail, /200 keys still match/);
});

test('redis-flush refuses a database not declared a cache, in plan and run, and leaves it alone', async () => {
  const flush = action('redis-flush');
  const db0 = await db(0);
  await db0.set('session:2', 'bob');
  for (const p of [{ target: 'cache', db: 0 }, { target: 'cache', db: 0, pattern: '*' }, { target: 'cache', db: 5 }]) {
    params(flush, p);
    await assert.rejects(flush.plan(ctx, p), /refusing to flush redis "cache" db \d+: it is not declared a cache \(cache_dbs: 1, 2\)/);
    await assert.rejects(flush.run(ctx, p, AbortSignal.timeout(10_000)), /not declared a cache/);
  }
  assert.equal(await db0.get('session:2'), 'bob');
  await assert.rejects(flush.plan(ctx, { target: 'nope', db: 1 }), /no redis target named "nope"/);
});

test('redis-flush params refuse text that is not a target name or a database number', () => {
  const flush = action('redis-flush');
  assert.equal(Value.Check(flush.params, { target: 'cache; FLUSHALL', db: 1 }), false);
  assert.equal(Value.Check(flush.params, { target: 'cache', db: '1; FLUSHALL' }), false);
  assert.equal(Value.Check(flush.params, { target: 'cache', db: 16 }), false);
  assert.equal(Value.Check(flush.params, { target: 'cache', db: 1, batch_size: 1e9 }), false);
  assert.equal(Value.Check(flush.params, { target: 'cache', db: 1, extra: 1 }), false);
});

test('redis-warm loads the configured query into Redis with its TTL, in pipelined batches', async () => {
  const warm = action('redis-warm');
  const db3 = await db(3);
  const p = params(warm, { query: 'top', batch_size: 40 });

  const plan = await warm.plan(ctx, p);
  assert.equal(plan.nothingToDo, false);
  assert.equal(plan.details?.['keys'], 250);
  assert.equal(plan.details?.['skipped_rows'], 1);
  assert.equal(await db3.dbsize(), 0, 'plan changed nothing');
  assert.equal((await warm.verify(ctx, p)).fixed, false);

  const r = await warm.run(ctx, p, AbortSignal.timeout(30_000));
  assert.equal(r.details?.['keys'], 250);
  assert.equal(r.details?.['batches'], 7); // 251 rows in fetches of 40
  const v = await warm.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  assert.equal(await db3.dbsize(), 250);
  assert.equal(await db3.get('answer:17'), 'answer 17');
  assert.equal(await db3.exists('answer:999'), 0, 'null value skipped');
  const ttl = await db3.pttl('answer:1');
  assert.ok(ttl > 0 && ttl <= 600_000, `TTL within 10m: ${ttl}`);
  // The shared connection stays on db 0.
  assert.equal(await targets.redis[0]?.client.exists('answer:1'), 0);
});

test('redis-warm stops at max_rows', async () => {
  const warm = action('redis-warm');
  const db3 = await db(3);
  await db3.flushdb();
  const r = await warm.run(ctx, params(warm, { query: 'top', max_rows: 100, batch_size: 64 }), AbortSignal.timeout(30_000));
  assert.equal(r.details?.['keys'], 100);
  assert.equal(r.details?.['truncated'], true);
  assert.equal(await db3.dbsize(), 100);
  assert.equal(await db3.exists('answer:1', 'answer:100', 'answer:101'), 2, 'the top 100 by hits');
});

test('redis-warm runs one read-only statement: chained or writing SQL in config fails and changes nothing', async () => {
  const warm = action('redis-warm');
  await assert.rejects(warm.run(ctx, params(warm, { query: 'chained' }), AbortSignal.timeout(10_000)), /multiple commands|syntax/);
  await assert.rejects(warm.run(ctx, params(warm, { query: 'writes' }), AbortSignal.timeout(10_000)));
  await assert.rejects(warm.plan(ctx, params(warm, { query: 'missing' })), /no warm query named "missing".*known: top, chained, writes/);
  const c = new pg.Client({ connectionString: primary.url({ db: 'app' }) });
  await c.connect();
  try {
    assert.equal((await c.query('SELECT count(*)::int AS n FROM top_queries')).rows[0].n, 251);
  } finally {
    await c.end();
  }
  assert.equal(Value.Check(warm.params, { query: 'top; DROP TABLE x' }), false);
});
