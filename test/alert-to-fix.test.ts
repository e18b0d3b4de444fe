// The whole loop with the real programs: real Postgres (primary + replica), PgBouncer and
// Redis; housekeeper with the real actions and the shipped database-and-cache rules; the
// real Prometheus 2.42 scraping it every second and evaluating alerts/*.yml; the real
// Alertmanager 0.25 calling POST /hooks/alertmanager with the bearer token. The test causes
// real trouble and waits (bounded) for it to be fixed and for the alert to resolve:
//   (a) Redis filled past 75% of maxmemory → RedisMemoryHigh → redis-flush → memory down;
//   (b) a 60 s query → PostgresLongRunningQueries → pg-cancel-long-queries → 57014.
// Only the alerts under test get a short `for:` (forOverride); every other alert keeps its
// own, and the rules file is the shipped one with only flush-cache-when-full's 2m delay
// shortened, so the chain is exactly what an operator installs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { isMap, isSeq, parseDocument } from 'yaml';
import { actions } from '../src/actions/index.ts';
import { startStack, type Stack } from './harness/stack.ts';
import { startPrometheus, type PrometheusServer } from './harness/prometheus.ts';
import { startAlertmanager, type AlertmanagerServer } from './harness/alertmanager.ts';
import { startInstance, TOKEN, until, type Instance } from './helpers/remediation.ts';
import { find } from './helpers/service.ts';

const root = resolve(import.meta.dirname, '..');
/** Every wait is bounded by this; generous, since the suite runs files in parallel. */
const WAIT_MS = 90_000;
const APP_PASSWORD = 'chatbot-app-pw-0123456789';

let stack: Stack;
let hk: Instance;
let prom: PrometheusServer;
let am: AlertmanagerServer;
let dir: string;

interface LogEntry {
  id: number;
  rule: string;
  action: string;
  target: string;
  alertname: string | null;
  episode: string | null;
  trigger: string;
  outcome: string;
  reason: string | null;
  error: string | null;
}

async function remediations(query: string): Promise<LogEntry[]> {
  const r = await fetch(`${hk.url}/api/remediations?${query}`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(10_000) });
  assert.equal(r.status, 200);
  return ((await r.json()) as { items: LogEntry[] }).items;
}

async function superuser<R extends pg.QueryResultRow>(db: string, text: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: stack.primary.url({ db }) });
  await c.connect();
  try {
    return (await c.query<R>(text)).rows;
  } finally {
    await c.end();
  }
}

/** Alerts with this name that Prometheus holds pending or firing. */
async function promAlerts(name: string): Promise<Array<{ state: string; labels: Record<string, string> }>> {
  return (await prom.alerts()).filter((a) => a.labels['alertname'] === name);
}

/** Label sets of this alert that fired in the last 10 minutes (Prometheus's ALERTS series). */
async function firedAlerts(name: string): Promise<Array<Record<string, string>>> {
  const q = `max_over_time(ALERTS{alertname="${name}",alertstate="firing"}[10m])`;
  return (await prom.query(q)).map((s) => s.metric);
}

/** Keys matching a glob, by SCAN (bounded by the keyspace). */
async function countKeys(redis: Redis, match: string): Promise<number> {
  let n = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    n += keys.length;
    cursor = next;
  } while (cursor !== '0');
  return n;
}

/** Sum of housekeeper_webhook_alerts_total{status}: what the webhook was told. */
async function webhookAlerts(status: 'firing' | 'resolved'): Promise<number> {
  const body = await (await fetch(`${hk.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  return find(body, 'housekeeper_webhook_alerts_total', { status }).reduce((s, x) => s + x.value, 0);
}

/** The shipped rules file, with only flush-cache-when-full's delay shortened. */
function shippedRulesForTest(): string {
  const doc = parseDocument(readFileSync(join(root, 'rules/database-and-cache.yml'), 'utf8'));
  const rules = doc.get('rules', true);
  assert.ok(isSeq(rules));
  let found = false;
  for (const r of rules.items) {
    if (isMap(r) && r.get('name') === 'flush-cache-when-full') {
      assert.ok(r.has('delay'), 'the shipped rule waits before flushing');
      r.set('delay', '1s');
      found = true;
    }
  }
  assert.ok(found, 'rules/database-and-cache.yml has flush-cache-when-full');
  return doc.toString();
}

before(async () => {
  // 32 MB with allkeys-lru, as a cache is run: writes never fail, and 75% is 24 MB.
  stack = await startStack({ redis: { maxmemory: '32mb', maxmemoryPolicy: 'allkeys-lru' } });
  // The application's role runs the long query (a non-superuser, as applications are);
  // housekeeper's monitoring role gets pg_signal_backend so it may cancel it, and a state
  // database of its own on the primary (the queue and the log).
  await superuser('postgres', `CREATE ROLE chatbot LOGIN PASSWORD '${APP_PASSWORD}'`);
  await superuser('postgres', 'GRANT pg_signal_backend TO housekeeper');
  await superuser('postgres', 'CREATE DATABASE housekeeper_state OWNER housekeeper');
  await superuser('app', 'CREATE TABLE query_log (query text PRIMARY KEY, answer text, hits int); GRANT SELECT ON query_log TO housekeeper');

  dir = mkdtempSync(join(tmpdir(), 'hk-loop-'));
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'database-and-cache.yml'), shippedRulesForTest());

  const { primary, replica, pgbouncer, redis } = stack;
  hk = await startInstance(
    `
log: { level: info }
postgres:
  - { name: primary, url: "${primary.url({ db: 'app', user: 'housekeeper' })}" }
  - { name: replica, url: "${replica.url({ db: 'app', user: 'housekeeper' })}" }
pgbouncer:
  - { name: bouncer, url: "${pgbouncer.adminUrl()}" }
redis:
  - { name: cache, url: "${redis.url(0)}", cache_dbs: [0] }
state: { url: "${primary.url({ db: 'housekeeper_state', user: 'housekeeper' })}" }
remediation: { rules_dir: ${rulesDir} }
actions:
  redis_warm:
    top-queries:
      postgres: primary
      sql: SELECT query AS key, answer AS value FROM query_log ORDER BY hits DESC LIMIT 100
      redis: cache
      db: 0
`,
    actions,
  );
  am = await startAlertmanager({ webhookUrl: `${hk.url}/hooks/alertmanager`, bearerToken: TOKEN, groupBy: ['alertname', 'target'] });
  prom = await startPrometheus({
    scrapeTargets: [{ job: 'housekeeper', url: `${hk.url}/metrics` }],
    ruleFiles: [join(root, 'alerts/*.yml')],
    alertmanagerUrl: am.url,
    scrapeInterval: '1s',
    forOverride: { RedisMemoryHigh: '2s', PostgresLongRunningQueries: '2s' },
  });
});

after(async () => {
  // Prometheus and Alertmanager first, so nothing calls a stopped housekeeper.
  await prom?.destroy();
  await am?.destroy();
  await hk?.close();
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('every alert file loads in the real Prometheus, which scrapes housekeeper', async () => {
  const groups = await prom.rules();
  assert.ok(groups.length > 0);
  for (const g of groups) for (const r of g.rules) assert.notEqual(r.health, 'err', `${r.name}: ${r.lastError ?? ''}`);
  const up = await until('up{job="housekeeper"} == 1', async () => {
    const s = await prom.query('up{job="housekeeper"} == 1');
    return s.length === 1 ? s : undefined;
  }, WAIT_MS);
  assert.equal(up[0]?.value[1], '1');
});

test('Redis past 75% of maxmemory: RedisMemoryHigh fires, redis-flush fixes it once, the alert resolves', async () => {
  const redis = new Redis(stack.redis.url(0), { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  try {
    const info = async (): Promise<{ used: number; max: number }> => {
      const text = await redis.info('memory');
      const field = (n: string): number => Number(new RegExp(`^${n}:(\\d+)`, 'm').exec(text)?.[1]);
      return { used: field('used_memory'), max: field('maxmemory') };
    };
    const { max } = await info();
    assert.equal(max, 32 * 1024 * 1024);
    // Fill in 1 MB pipelines until used_memory is past 85% (bounded: 64 rounds is twice maxmemory).
    const value = 'v'.repeat(8 * 1024);
    for (let round = 0; round < 64 && (await info()).used < 0.85 * max; round++) {
      const p = redis.pipeline();
      for (let i = 0; i < 128; i++) p.set(`cache:query:${round}:${i}`, value, 'EX', 3600);
      await p.exec();
    }
    const filled = await info();
    assert.ok(filled.used > 0.75 * max, `Redis filled past 75% (${filled.used} of ${max})`);
    const keysBefore = await redis.dbsize();

    const entry = await until('a finished redis-flush in the remediation log', async () => {
      const done = (await remediations('action=redis-flush')).filter((e) => e.outcome !== 'running');
      return done.length > 0 ? done : undefined;
    }, WAIT_MS);
    assert.equal(entry.length, 1, `one entry: ${JSON.stringify(entry)}`);
    const flush = entry[0]!;
    assert.equal(flush.outcome, 'fixed', `${flush.reason ?? ''} ${flush.error ?? ''}`);
    assert.equal(flush.rule, 'flush-cache-when-full');
    assert.equal(flush.trigger, 'alert');
    assert.equal(flush.alertname, 'RedisMemoryHigh');
    assert.equal(flush.target, 'redis:cache');
    assert.ok(flush.episode);
    // It was Prometheus's alert, with the labels the rule needs (ALERTS keeps the history).
    const fired = await firedAlerts('RedisMemoryHigh');
    assert.equal(fired.length, 1, JSON.stringify(fired));
    assert.equal(fired[0]?.['target'], 'cache');
    assert.equal(fired[0]?.['remediation'], 'redis-flush');

    // The fix is real: the cache database is empty and memory is back under 75%.
    const after = await until('Redis memory under 75%', async () => {
      const m = await info();
      return m.used < 0.75 * max ? m : undefined;
    }, WAIT_MS);
    assert.ok(after.used < filled.used);
    assert.ok(keysBefore > 0);
    assert.equal(await countKeys(redis, 'cache:query:*'), 0, 'the cache entries are gone');

    // The alert resolves: Prometheus drops it, Alertmanager tells the webhook.
    await until('RedisMemoryHigh gone from Prometheus', async () => (await promAlerts('RedisMemoryHigh')).length === 0, WAIT_MS);
    await until('the resolution reached the webhook', async () => (await webhookAlerts('resolved')) >= 1, WAIT_MS);
    await until('RedisMemoryHigh no longer active in Alertmanager', async () => {
      const active = (await am.alerts()).filter((a) => a.labels['alertname'] === 'RedisMemoryHigh' && a.status.state === 'active');
      return active.length === 0;
    }, WAIT_MS);

    // Still exactly one run for the episode: repeats of the notification were duplicates.
    const all = await remediations('action=redis-flush');
    assert.deepEqual(all.map((e) => [e.episode, e.outcome]), [[flush.episode, 'fixed']]);
  } finally {
    redis.disconnect();
  }
});

test('a query past 5 s: PostgresLongRunningQueries fires, pg-cancel-long-queries cancels it once, the alert resolves', async () => {
  const app = new pg.Client({
    connectionString: `postgres://chatbot:${APP_PASSWORD}@127.0.0.1:${stack.primary.port}/app`,
    application_name: 'chatbot-api',
  });
  app.on('error', () => {});
  await app.connect();
  try {
    const resolvedBefore = await webhookAlerts('resolved');
    const sleeping = app.query('SELECT pg_sleep(60)').then(
      () => 'finished',
      (err: { code?: string }) => err.code ?? String(err),
    );

    // The client sees its statement cancelled (query_canceled), long before its 60 s.
    const code = await Promise.race([
      sleeping,
      new Promise<string>((r) => setTimeout(() => r('still running'), WAIT_MS).unref()),
    ]);
    assert.equal(code, '57014', 'the query was cancelled');
    // The session survives: only the statement was cancelled.
    assert.equal((await app.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1);

    const entries = await until('a finished pg-cancel-long-queries in the remediation log', async () => {
      const done = (await remediations('action=pg-cancel-long-queries')).filter((e) => e.outcome !== 'running');
      return done.length > 0 ? done : undefined;
    }, WAIT_MS);
    const cancel = entries[0]!;
    assert.equal(cancel.outcome, 'fixed', `${cancel.reason ?? ''} ${cancel.error ?? ''}`);
    assert.equal(cancel.rule, 'cancel-long-queries');
    assert.equal(cancel.alertname, 'PostgresLongRunningQueries');
    assert.equal(cancel.target, 'postgres:primary');
    const fired = await firedAlerts('PostgresLongRunningQueries');
    assert.equal(fired.length, 1, JSON.stringify(fired));
    assert.equal(fired[0]?.['target'], 'primary');
    assert.equal(fired[0]?.['datname'], 'app');
    assert.equal(fired[0]?.['remediation'], 'pg-cancel-long-queries');

    await until('PostgresLongRunningQueries gone from Prometheus', async () => (await promAlerts('PostgresLongRunningQueries')).length === 0, WAIT_MS);
    await until('the resolution reached the webhook', async () => (await webhookAlerts('resolved')) > resolvedBefore, WAIT_MS);
    const rows = await superuser<{ n: number }>('app', `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'chatbot' AND state = 'active'`);
    assert.equal(rows[0]?.n, 0, 'no long query left');

    const all = await remediations('action=pg-cancel-long-queries');
    assert.deepEqual(all.map((e) => [e.episode, e.outcome]), [[cancel.episode, 'fixed']], 'the log shows it once');
  } finally {
    await app.end().catch(() => {});
  }
});
