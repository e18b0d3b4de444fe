import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from './harness/redis.ts';
import { find, scrapeUntil, startService, value, type Service } from './helpers/service.ts';
import { families, startRedisExporter, type RedisExporter } from './helpers/redis-exporter.ts';
import { poller } from './helpers/wait.ts';

// housekeeper's Redis metrics against the anchor, redis_exporter 1.45, on the same real
// servers: a Redis 7 primary and a real replica of it (REPLICAOF), so the replication
// families are the real ones on both sides.

const until = poller({ tries: 200, intervalMs: 50 });

// Families redis_exporter serves that housekeeper deliberately does not. Each has a reason;
// anything else the anchor serves and housekeeper lacks fails the test.
const OMITTED: Record<string, string> = {
  // The exporter's own bookkeeping; housekeeper_collector_success / _duration_seconds and
  // housekeeper's scrape metrics say the same for every collector.
  redis_exporter_build_info: 'exporter self-metric',
  redis_exporter_last_scrape_connect_time_seconds: 'exporter self-metric',
  redis_exporter_last_scrape_duration_seconds: 'exporter self-metric',
  redis_exporter_last_scrape_error: 'exporter self-metric',
  redis_exporter_scrape_duration_seconds: 'exporter self-metric',
  redis_exporter_scrapes_total: 'exporter self-metric',
  redis_target_scrape_request_errors_total: 'exporter self-metric (its /scrape endpoint)',
  redis_last_key_groups_scrape_duration_milliseconds: 'key-group scanning (-check-key-groups), which housekeeper never does: it scans no keys',
  // INFO latencystats as a summary with quantile labels per command: the commands' mean
  // latency is already redis_commands_duration_seconds_total / redis_commands_total, and no
  // dashboard or alert of the ones housekeeper targets reads the percentiles.
  redis_latency_percentiles_usec: 'per-command latency percentiles (summary); mean latency comes from commandstats',
  // redis_exporter reads it from CONFIG GET * (every setting, every scrape); housekeeper asks
  // only for maxclients, and io_threads_active says whether I/O threads run.
  redis_config_io_threads: 'needs CONFIG GET * or a second CONFIG GET',
};

let primary: RedisServer;
let replica: RedisServer;
let client: Redis;
let svc: Service;
const anchors: RedisExporter[] = [];

before(async () => {
  [primary, replica] = await Promise.all([startRedis(), startRedis()]);
  const r = new Redis(replica.url(0), { lazyConnect: true, maxRetriesPerRequest: 1 });
  r.on('error', () => {});
  await r.connect();
  try {
    await r.config('SET', 'masterauth', primary.password);
    await r.replicaof('127.0.0.1', primary.port);
    await until('the replica\'s link to the primary', async () => /master_link_status:up/.test(await r.info('replication')));
  } finally {
    r.disconnect();
  }
  client = new Redis(primary.url(0), { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await client.connect();
  for (let i = 0; i < 50; i++) await client.set(`k:${i}`, 'v', 'EX', 3600);
  await client.get('k:1');
  await client.call('NO-SUCH-COMMAND').catch(() => undefined); // one error reply, for errorstats
  svc = await startService(`
redis:
  - { name: primary, url: "${primary.url(0)}" }
  - { name: replica, url: "${replica.url(0)}" }
`);
  anchors.push(await startRedisExporter(primary), await startRedisExporter(replica));
});

after(async () => {
  await svc?.close();
  await Promise.allSettled(anchors.map((a) => a.stop()));
  client?.disconnect();
  await Promise.allSettled([primary?.destroy(), replica?.destroy()]);
});

test('every redis_* family the anchor serves, housekeeper serves with the same type and labels (or it is in the commented omissions)', async () => {
  const ours = families((await svc.scrape()).body, 'redis_');
  const missing: string[] = [];
  const wrong: string[] = [];
  let compared = 0;
  for (const anchor of anchors) {
    for (const [name, theirs] of families(await anchor.scrape(), 'redis_')) {
      if (name in OMITTED) continue;
      const mine = ours.get(name);
      if (!mine) {
        missing.push(name);
        continue;
      }
      compared++;
      if (mine.type !== theirs.type) wrong.push(`${name}: type ${mine.type}, anchor ${theirs.type}`);
      const lacking = [...theirs.labels].filter((l) => !mine.labels.has(l));
      if (lacking.length > 0) wrong.push(`${name}: lacks label(s) ${lacking.join(', ')}`);
    }
  }
  assert.deepEqual([...new Set(missing)].sort(), [], 'families the anchor serves and housekeeper lacks');
  assert.deepEqual(wrong, []);
  // The comparison saw both roles' families (a replica has its own), not an empty body.
  assert.ok(compared > 200, `compared ${compared} families`);
  for (const name of Object.keys(OMITTED)) assert.equal(ours.has(name), false, `${name} is served after all: drop it from OMITTED`);
});

test('commandstats: redis_commands_total and _duration_seconds_total per cmd grow with the commands run', async () => {
  const t = { target: 'primary' };
  const before = (await svc.scrape()).body;
  const sets0 = value(before, 'redis_commands_total', { ...t, cmd: 'set' }) ?? 0;
  const usec0 = value(before, 'redis_commands_duration_seconds_total', { ...t, cmd: 'set' }) ?? 0;
  const in0 = value(before, 'redis_net_input_bytes_total', t) ?? 0;
  const out0 = value(before, 'redis_net_output_bytes_total', t) ?? 0;
  assert.ok(sets0 >= 50);
  for (let i = 0; i < 30; i++) await client.set(`more:${i}`, 'x'.repeat(100));
  await client.hset('h', 'a', '1');
  const body = (await svc.scrape()).body;
  assert.equal(value(body, 'redis_commands_total', { ...t, cmd: 'set' }), sets0 + 30);
  assert.equal(value(body, 'redis_commands_total', { ...t, cmd: 'hset' }), 1);
  assert.ok((value(body, 'redis_commands_duration_seconds_total', { ...t, cmd: 'set' }) ?? 0) > usec0);
  // Subcommands are labelled as redis_exporter labels them.
  assert.ok((value(body, 'redis_commands_total', { ...t, cmd: 'config|get' }) ?? 0) >= 1);
  assert.ok((value(body, 'redis_net_input_bytes_total', t) ?? 0) > in0 + 30 * 100);
  assert.ok((value(body, 'redis_net_output_bytes_total', t) ?? 0) > out0);
  assert.ok((value(body, 'redis_errors_total', { ...t, err: 'ERR' }) ?? 0) >= 1);
  assert.ok((value(body, 'redis_commands_processed_total', t) ?? 0) > 0);
});

test('replication: roles, the primary\'s view of its replica and the replica\'s link, with redis_exporter\'s labels', async () => {
  const body0 = (await svc.scrape()).body;
  assert.equal(find(body0, 'redis_instance_info', { target: 'primary', role: 'master' }).length, 1);
  assert.equal(find(body0, 'redis_instance_info', { target: 'replica', role: 'slave' }).length, 1);
  assert.equal(value(body0, 'redis_connected_slaves', { target: 'primary' }), 1);
  assert.equal(value(body0, 'redis_connected_slaves', { target: 'replica' }), 0);
  const master = { master_host: '127.0.0.1', master_port: String(primary.port) };
  assert.equal(value(body0, 'redis_master_link_up', { target: 'replica', ...master }), 1);
  assert.equal(value(body0, 'redis_slave_info', { target: 'replica', ...master, read_only: '1' }), 1);
  assert.equal(find(body0, 'redis_master_link_up', { target: 'primary' }).length, 0, 'a primary has no master link');
  const slave = { target: 'primary', slave_ip: '127.0.0.1', slave_port: String(replica.port), slave_state: 'online' };
  assert.equal(find(body0, 'redis_connected_slave_offset_bytes', slave).length, 1);
  assert.equal(value(body0, 'redis_repl_backlog_is_active', { target: 'primary' }), 1);
  // Writes move the primary's offset, and the replica's offset follows it.
  const offset0 = value(body0, 'redis_master_repl_offset', { target: 'primary' }) ?? 0;
  await client.set('replicated', 'y'.repeat(1000));
  const body = await scrapeUntil(svc, 'the replica caught up', (b) => {
    const primaryOffset = value(b, 'redis_master_repl_offset', { target: 'primary' }) ?? 0;
    return primaryOffset > offset0 + 1000 && value(b, 'redis_slave_repl_offset', { target: 'replica', ...master }) === primaryOffset;
  });
  assert.equal(value(body, 'redis_connected_slave_offset_bytes', slave) !== undefined, true);
  assert.ok((value(body, 'redis_master_last_io_seconds_ago', { target: 'replica', ...master }) ?? -1) >= 0);
  assert.ok(!body.includes(primary.password) && !body.includes(replica.password), 'a password in /metrics');
});

/** promtool check metrics findings on the redis_* families of a body, by metric name. */
function lint(body: string): Map<string, string[]> {
  const input = body.split('\n').filter((l) => /^(# (HELP|TYPE) )?redis_/.test(l)).join('\n') + '\n';
  // promtool exits non-zero when it has findings and writes them to stderr.
  const r = spawnSync('promtool', ['check', 'metrics'], { input, encoding: 'utf8' });
  if (r.error) throw r.error;
  const byName = new Map<string, string[]>();
  for (const line of `${r.stdout}${r.stderr}`.split('\n').filter((x) => x.trim() !== '')) {
    const [name = '', ...rest] = line.split(' ');
    byName.set(name, [...(byName.get(name) ?? []), rest.join(' ')]);
  }
  return byName;
}

test('promtool check metrics: every warning on housekeeper\'s redis_* families is one the anchor\'s own names get', async () => {
  const ours = lint((await svc.scrape()).body);
  // Each anchor's body on its own: one text body may not repeat a family's TYPE line.
  const theirs = new Map<string, string[]>();
  for (const a of anchors) for (const [name, w] of lint(await a.scrape())) theirs.set(name, [...(theirs.get(name) ?? []), ...w]);
  assert.ok(theirs.size > 0, 'promtool ran and read the anchor');
  for (const [name, warnings] of ours) {
    for (const w of warnings) assert.ok(theirs.get(name)?.includes(w), `${name}: ${w} (the anchor has no such warning)`);
  }
});
