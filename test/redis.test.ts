import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from './harness/redis.ts';
import { find, scrapeUntil, startService, value, type Service } from './helpers/service.ts';
import { startHungServer } from './helpers/hung.ts';
import { elapse } from './helpers/wait.ts';

// The Redis collector against a real Redis 7.0.

let redis: RedisServer;
let client: Redis;
let svc: Service;

before(async () => {
  redis = await startRedis({ maxmemory: '16mb', maxmemoryPolicy: 'allkeys-lru' });
  client = new Redis(redis.url(0), { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await client.connect();
  svc = await startService(`
redis:
  - name: cache
    url: ${redis.url(0)}
    cache_dbs: [0]
`);
});

after(async () => {
  await svc?.close();
  client?.disconnect();
  await redis?.destroy();
});

test('memory, limits and clients with redis_exporter\'s names', async () => {
  const body = (await svc.scrape()).body;
  assert.equal(value(body, 'redis_up', { target: 'cache' }), 1);
  assert.equal(value(body, 'redis_memory_max_bytes', { target: 'cache' }), 16 * 1024 * 1024);
  assert.ok((value(body, 'redis_memory_used_bytes', { target: 'cache' }) ?? 0) > 0);
  assert.ok((value(body, 'redis_connected_clients', { target: 'cache' }) ?? 0) >= 2);
  assert.equal(value(body, 'redis_config_maxclients', { target: 'cache' }), 10000);
  assert.equal(find(body, 'redis_instance_info', { target: 'cache', role: 'master' }).length, 1);
  assert.equal(value(body, 'redis_rdb_last_bgsave_status', { target: 'cache' }), 1);
});

test('filling Redis moves memory, keys, hits and misses', async () => {
  const before = (await svc.scrape()).body;
  const used0 = value(before, 'redis_memory_used_bytes', { target: 'cache' }) ?? 0;
  const hits0 = value(before, 'redis_keyspace_hits_total', { target: 'cache' }) ?? 0;
  const misses0 = value(before, 'redis_keyspace_misses_total', { target: 'cache' }) ?? 0;
  const pipe = client.pipeline();
  for (let i = 0; i < 2000; i++) pipe.set(`q:${i}`, 'x'.repeat(2000), 'EX', 3600);
  await pipe.exec();
  for (let i = 0; i < 50; i++) await client.get(`q:${i}`);
  for (let i = 0; i < 20; i++) await client.get(`missing:${i}`);
  const body = (await svc.scrape()).body;
  assert.ok((value(body, 'redis_memory_used_bytes', { target: 'cache' }) ?? 0) > used0 + 2_000_000);
  assert.equal(value(body, 'redis_keyspace_hits_total', { target: 'cache' }), hits0 + 50);
  assert.equal(value(body, 'redis_keyspace_misses_total', { target: 'cache' }), misses0 + 20);
  assert.equal(value(body, 'redis_db_keys', { target: 'cache', db: 'db0' }), 2000);
  assert.equal(value(body, 'redis_db_keys_expiring', { target: 'cache', db: 'db0' }), 2000);
});

test('past maxmemory, keys are evicted and counted', async () => {
  const pipe = client.pipeline();
  for (let i = 0; i < 12_000; i++) pipe.set(`big:${i}`, 'y'.repeat(2000));
  await pipe.exec();
  const body = (await svc.scrape()).body;
  assert.ok((value(body, 'redis_evicted_keys_total', { target: 'cache' }) ?? 0) > 0);
  assert.ok((value(body, 'redis_memory_used_bytes', { target: 'cache' }) ?? 0) <= 17 * 1024 * 1024);
});

test('the slow log is read without blocking commands', async () => {
  await client.config('SET', 'slowlog-log-slower-than', '0');
  await client.set('slow', '1');
  await client.config('SET', 'slowlog-log-slower-than', '10000');
  const body = (await svc.scrape()).body;
  assert.ok((value(body, 'redis_slowlog_length', { target: 'cache' }) ?? 0) >= 1);
  assert.ok((value(body, 'redis_slowlog_last_id', { target: 'cache' }) ?? -1) >= 0);
  assert.ok((value(body, 'redis_last_slow_execution_duration_seconds', { target: 'cache' }) ?? -1) >= 0);
});

test('a stopped Redis gives redis_up 0 with a 200, and a restart brings it back with uptime reset', async () => {
  const before = (await svc.scrape()).body;
  const start0 = value(before, 'redis_start_time_seconds', { target: 'cache' }) ?? 0;
  assert.ok(start0 > 0);
  assert.equal(value((await svc.scrape()).body, 'redis_start_time_seconds', { target: 'cache' }), start0, 'stable between scrapes');
  // Starts 1.2 s apart give estimates (each within 1 s of the truth) that differ.
  await elapse(1200, 'the restart comes 1.2 s after the first start');
  await redis.stop();
  try {
    const r = await svc.scrape({ 'X-Prometheus-Scrape-Timeout-Seconds': '2' });
    assert.equal(r.status, 200);
    assert.equal(value(r.body, 'redis_up', { target: 'cache' }), 0);
    assert.equal(value(r.body, 'housekeeper_collector_success', { collector: 'redis', target: 'cache' }), 0);
    assert.equal(find(r.body, 'redis_memory_used_bytes').length, 0);
  } finally {
    await redis.start();
  }
  const body = await scrapeUntil(svc, 'redis back', (b) => value(b, 'redis_up', { target: 'cache' }) === 1);
  assert.ok((value(body, 'redis_start_time_seconds', { target: 'cache' }) ?? 0) > start0, 'start time moves forward on a restart');
  assert.equal(find(body, 'redis_db_keys', { target: 'cache', db: 'db0' }).length, 0, 'the restarted Redis is empty (cache cold)');
  assert.ok(!svc.lines.some((l) => l.includes(redis.password)), 'password in the log');
  assert.ok(!body.includes(redis.password), 'password in /metrics');
});

test('a hung Redis holds one connection and never fails the scrape', async (t) => {
  const hung = await startHungServer();
  const port = hung.port;
  const hs = await startService(`
server: { scrape_timeout: 1s }
redis:
  - name: hung
    url: redis://:pw@127.0.0.1:${port}/0
`);
  t.after(async () => {
    await hs.close();
    await hung.close();
  });
  for (let i = 0; i < 5; i++) {
    const r = await hs.scrape({ 'X-Prometheus-Scrape-Timeout-Seconds': '0.6' });
    assert.equal(r.status, 200);
    assert.equal(value(r.body, 'redis_up', { target: 'hung' }), 0);
  }
  assert.ok(hung.accepted <= 2, `connections opened: ${hung.accepted}`);
});
