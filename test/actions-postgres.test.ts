import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { Value } from '@sinclair/typebox/value';
import type { ActionContext } from '../src/actions/action.ts';
import { closeTargets, type Targets } from '../src/targets/index.ts';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { action, actionContext, params } from './helpers/actions.ts';
import { poller } from './helpers/wait.ts';

// The Postgres actions against a real PostgreSQL 15: cancel, terminate, vacuum, reindex.

let primary: PgServer;
let targets: Targets;
let ctx: ActionContext;
let su: pg.Client; // the test's own superuser connection (application_name 'test-admin')
const clients: pg.Client[] = [];

async function client(applicationName: string, user: 'postgres' | 'housekeeper' = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: primary.url({ db: 'app', user }), application_name: applicationName });
  c.on('error', () => {}); // a terminated session emits 'error'; the test checks it otherwise
  await c.connect();
  clients.push(c);
  return c;
}

/** Bounded wait for a condition (no sleeps asserted on). */
const until = poller({ tries: 100, intervalMs: 100 });

async function one<T = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T> {
  return (await su.query(text, values)).rows[0] as T;
}

before(async () => {
  primary = await startPostgres();
  su = new pg.Client({ connectionString: primary.url({ db: 'app' }), application_name: 'test-admin' });
  await su.connect();
  await su.query(`CREATE ROLE reporter LOGIN PASSWORD 'reporter-pw'`);
  ctx = actionContext(`
postgres:
  - name: primary
    url: ${primary.url({ db: 'app' })}
  - name: monitor
    url: ${primary.url({ db: 'app', user: 'housekeeper' })}
actions:
  protected_users: [reporter]
  protected_applications: [test-admin, batch-job]
`);
  targets = ctx.targets;
});

after(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await su?.end().catch(() => {});
  if (targets) await closeTargets(targets);
  await primary?.destroy();
});

/** Waits until a session with this application_name is active in pg_sleep for over 1 s. */
async function sleepingOverOneSecond(app: string): Promise<number> {
  return until(`${app} sleeping > 1 s`, async () => {
    const r = await one<{ pid: number } | undefined>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query_start < now() - interval '1.2 s'`,
      [app],
    );
    return r?.pid;
  });
}

test('pg-cancel-long-queries cancels a pg_sleep(60) over the threshold and spares protected sessions', async () => {
  const cancel = action('pg-cancel-long-queries');
  const victim = await client('web');
  const batch = await client('batch-job'); // protected application
  const reporterUrl = new URL(primary.url({ db: 'app' }));
  reporterUrl.username = 'reporter';
  reporterUrl.password = 'reporter-pw';
  const reporter = new pg.Client({ connectionString: reporterUrl.toString() }); // protected user
  reporter.on('error', () => {});
  await reporter.connect();
  clients.push(reporter);
  const victimQuery = victim.query('SELECT pg_sleep(60)').then(
    () => 'finished',
    (e: { code?: string }) => e.code,
  );
  const batchQuery = batch.query('SELECT pg_sleep(60)').catch(() => 'cancelled by the test');
  const reporterQuery = reporter.query('SELECT pg_sleep(60)').catch(() => 'cancelled by the test');
  const victimPid = await sleepingOverOneSecond('web');
  await sleepingOverOneSecond('batch-job');
  await until('reporter sleeping', async () => (await one<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'reporter' AND state = 'active'`)).n === 1);

  const p = params(cancel, { target: 'primary', threshold_seconds: 1 });
  const plan = await cancel.plan(ctx, p);
  assert.equal(plan.nothingToDo, false);
  assert.match(plan.summary, /^cancel 1 session with queries active longer than 1 s on all databases of "primary"$/);
  const sessions = plan.details?.['sessions'] as { pid: number; application_name: string }[];
  assert.deepEqual(sessions.map((s) => s.pid), [victimPid]);
  assert.ok(!JSON.stringify(plan.details).includes('pg_sleep'), 'query text is never recorded');
  assert.equal((await one<{ state: string }>('SELECT state FROM pg_stat_activity WHERE pid = $1', [victimPid])).state, 'active', 'plan changed nothing');

  const r = await cancel.run(ctx, p, AbortSignal.timeout(30_000));
  assert.match(r.summary, /^cancelled 1 session/);
  assert.equal(await victimQuery, '57014', 'the query was cancelled (query_canceled)');
  const v = await cancel.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  // The session survives a cancel.
  assert.equal((await victim.query('SELECT 1 AS one')).rows[0].one, 1);
  // Protected user and application still run.
  assert.equal((await one<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'batch-job' AND state = 'active'`)).n, 1);
  assert.equal((await one<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'reporter' AND state = 'active'`)).n, 1);
  await su.query(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'batch-job' OR usename = 'reporter'`);
  await Promise.all([batchQuery, reporterQuery]);
});

test('pg-cancel-long-queries reports, but does not signal, sessions its role may not cancel', async () => {
  const cancel = action('pg-cancel-long-queries');
  const victim = await client('web-2');
  const q = victim.query('SELECT pg_sleep(60)').then(
    () => 'finished',
    (e: { code?: string }) => e.code,
  );
  const pid = await sleepingOverOneSecond('web-2');
  // 'monitor' connects as housekeeper (pg_monitor only): a superuser's query is out of its reach.
  const p = params(cancel, { target: 'monitor', threshold_seconds: 1, database: 'app' });
  const plan = await cancel.plan(ctx, p);
  assert.equal(plan.nothingToDo, true);
  assert.match(plan.summary, /cancel 0 sessions .* \(1 more our role may not signal\)/);
  const r = await cancel.run(ctx, p, AbortSignal.timeout(30_000));
  assert.match(r.summary, /^cancelled 0 sessions/);
  const v = await cancel.verify(ctx, p);
  assert.equal(v.fixed, false);
  assert.match(v.detail, /1 session .* left .* \(1 our role may not signal\)/);
  assert.equal((await one<{ state: string }>('SELECT state FROM pg_stat_activity WHERE pid = $1', [pid])).state, 'active');
  await su.query('SELECT pg_cancel_backend($1)', [pid]);
  assert.equal(await q, '57014');
});

test('pg-terminate-idle-in-transaction terminates a session idle in a transaction; its work is rolled back', async () => {
  const terminate = action('pg-terminate-idle-in-transaction');
  await su.query('CREATE TABLE idle_tx_probe (id int)');
  const idle = await client('forgetful');
  const busy = await client('web-3');
  await idle.query('BEGIN');
  await idle.query('INSERT INTO idle_tx_probe VALUES (1)');
  await busy.query('BEGIN');
  const pid = await until('idle in transaction > 1 s', async () => {
    const r = await one<{ pid: number } | undefined>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = 'forgetful' AND state = 'idle in transaction' AND state_change < now() - interval '1.2 s'`,
    );
    return r?.pid;
  });
  const p = params(terminate, { target: 'primary', threshold_seconds: 1, database: 'app' });
  // web-3 went idle in its transaction later: with limit 1 the longest-idle session goes first.
  const plan = await terminate.plan(ctx, params(terminate, { ...p, limit: 1 }));
  assert.equal(plan.nothingToDo, false);
  assert.equal((plan.details?.['sessions'] as { pid: number }[])[0]?.pid, pid);
  const r = await terminate.run(ctx, params(terminate, { ...p, limit: 1 }), AbortSignal.timeout(30_000));
  assert.match(r.summary, /^terminated 1 session/);
  await until('session gone', async () => (await one<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid])).n === 0);
  await assert.rejects(idle.query('SELECT 1'));
  assert.equal((await one<{ n: number }>('SELECT count(*)::int AS n FROM idle_tx_probe')).n, 0, 'rolled back');
  // Then the rest (web-3), and verify.
  await terminate.run(ctx, p, AbortSignal.timeout(30_000));
  const v = await terminate.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
});

test('session actions never touch their own sessions or the params\' text', async () => {
  const cancel = action('pg-cancel-long-queries');
  assert.equal(Value.Check(cancel.params, { target: 'primary', threshold_seconds: 0 }), false, 'threshold at least 1 s');
  assert.equal(Value.Check(cancel.params, { target: 'primary', threshold_seconds: '5; SELECT 1' }), false);
  assert.equal(Value.Check(cancel.params, { target: "primary' OR 1=1 --", threshold_seconds: 5 }), false);
  // A database name carrying SQL is only a bound value: it matches no session.
  const p = params(cancel, { target: 'primary', threshold_seconds: 1, database: "app' OR '1'='1" });
  const plan = await cancel.plan(ctx, p);
  assert.equal(plan.nothingToDo, true);
  assert.equal(plan.details?.['total'], 0);
});

async function deadTuples(table: string): Promise<{ dead: number; live: number }> {
  return one<{ dead: number; live: number }>(
    `SELECT n_dead_tup::int AS dead, n_live_tup::int AS live FROM pg_stat_user_tables WHERE relname = $1`,
    [table],
  );
}

test('pg-vacuum vacuums the tables over the dead-tuple ratio; dead tuples go to 0', async () => {
  const vacuum = action('pg-vacuum');
  await su.query('CREATE TABLE docs (id int, body text) WITH (autovacuum_enabled = false)');
  await su.query(`INSERT INTO docs SELECT g, repeat('x', 100) FROM generate_series(1, 10000) g`);
  await su.query('DELETE FROM docs WHERE id <= 6000');
  await su.query('SELECT pg_stat_force_next_flush()');
  await until('dead tuples counted', async () => (await deadTuples('docs')).dead === 6000);

  const p = params(vacuum, { target: 'primary', dead_ratio: 0.2, min_dead_tuples: 100 });
  const plan = await vacuum.plan(ctx, p);
  assert.equal(plan.nothingToDo, false);
  assert.match(plan.summary, /VACUUM \(ANALYZE\) 1 table on "primary": public\.docs/);
  assert.equal((await deadTuples('docs')).dead, 6000, 'plan changed nothing');
  assert.equal((await vacuum.verify(ctx, p)).fixed, false);

  const r = await vacuum.run(ctx, p, AbortSignal.timeout(60_000));
  assert.match(r.summary, /VACUUM \(ANALYZE\) on 1 table of "primary": public\.docs/);
  const v = await vacuum.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  assert.deepEqual(await deadTuples('docs'), { dead: 0, live: 4000 });
  assert.equal((await vacuum.plan(ctx, p)).nothingToDo, true);
  // The pooled connection went back with the pool's own statement_timeout.
  const timeout = await targets.postgres[0]?.use(AbortSignal.timeout(5000), async (c) => (await c.query('SHOW statement_timeout')).rows[0].statement_timeout);
  assert.equal(timeout, '10s');
});

test('pg-vacuum on a named table: catalog names are quoted; SQL in the name is refused', async () => {
  const vacuum = action('pg-vacuum');
  const weird = 'Weird "name"; x';
  await su.query(`CREATE TABLE ${su.escapeIdentifier(weird)} (id int) WITH (autovacuum_enabled = false)`);
  await su.query(`INSERT INTO ${su.escapeIdentifier(weird)} SELECT generate_series(1, 2000)`);
  await su.query(`DELETE FROM ${su.escapeIdentifier(weird)}`);
  await su.query('SELECT pg_stat_force_next_flush()');
  await until('dead tuples counted', async () => (await deadTuples(weird))?.dead === 2000);
  const p = params(vacuum, { target: 'primary', table: weird });
  assert.equal((await vacuum.verify(ctx, p)).fixed, false);
  await vacuum.run(ctx, p, AbortSignal.timeout(60_000));
  assert.equal((await vacuum.verify(ctx, p)).fixed, true);
  assert.equal((await deadTuples(weird)).dead, 0);

  for (const table of ['docs; DROP TABLE docs', '"docs"', 'public.docs', 'DOCS']) {
    const bad = params(vacuum, { target: 'primary', table });
    await assert.rejects(vacuum.plan(ctx, bad), /no table named .* in pg_stat_user_tables of "primary"/);
    await assert.rejects(vacuum.run(ctx, bad, AbortSignal.timeout(10_000)), /no table named/);
  }
  await assert.rejects(vacuum.plan(ctx, params(vacuum, { target: 'primary', table: 'docs', schema: 'nope' })), /in schema "nope"/);
  assert.equal((await one<{ n: number }>('SELECT count(*)::int AS n FROM docs')).n, 4000, 'docs is still there');
});

async function indexInfo(name: string): Promise<{ valid: boolean; filenode: number; bytes: number }> {
  return one(
    `SELECT i.indisvalid AS valid, c.relfilenode::int AS filenode, pg_relation_size(c.oid)::int AS bytes
     FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = $1`,
    [name],
  );
}

test('pg-reindex rebuilds the indexes the estimate calls bloated; they end valid and small', async () => {
  const reindex = action('pg-reindex');
  await su.query('CREATE TABLE items (id int, v int) WITH (autovacuum_enabled = false)');
  await su.query('INSERT INTO items SELECT g, g % 1000 FROM generate_series(1, 100000) g');
  await su.query('CREATE INDEX items_id_idx ON items (id)');
  await su.query('DELETE FROM items WHERE id % 10 <> 0');
  await su.query('VACUUM (ANALYZE) items'); // dead space stays in the index; reltuples and pg_stats are fresh
  const before = await indexInfo('items_id_idx');
  const p = params(reindex, { target: 'primary', min_size_bytes: 1024 * 1024, min_bloat_ratio: 0.5 });

  const plan = await reindex.plan(ctx, p);
  assert.equal(plan.nothingToDo, false);
  const planned = plan.details?.['indexes'] as { index: string; bloat_ratio: number }[];
  assert.deepEqual(planned.map((i) => i.index), ['items_id_idx']);
  assert.ok((planned[0]?.bloat_ratio ?? 0) > 0.8, `estimated bloat ${planned[0]?.bloat_ratio}`);
  assert.deepEqual(await indexInfo('items_id_idx'), before, 'plan changed nothing');
  assert.equal((await reindex.verify(ctx, p)).fixed, false);

  const r = await reindex.run(ctx, p, AbortSignal.timeout(60_000));
  assert.match(r.summary, /REINDEX INDEX CONCURRENTLY on 1 index of "primary": public\.items_id_idx/);
  const v = await reindex.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  const afterInfo = await indexInfo('items_id_idx');
  assert.equal(afterInfo.valid, true);
  assert.notEqual(afterInfo.filenode, before.filenode, 'rebuilt');
  assert.ok(afterInfo.bytes < before.bytes / 4, `smaller: ${before.bytes} → ${afterInfo.bytes}`);
});

test('pg-reindex on named indexes: an invalid index becomes valid; names carrying SQL or system indexes are refused', async () => {
  const reindex = action('pg-reindex');
  await su.query('CREATE TABLE tags (name text)');
  await su.query(`INSERT INTO tags VALUES ('a'), ('a'), ('b')`);
  // A failed CREATE INDEX CONCURRENTLY leaves an invalid index behind.
  await assert.rejects(su.query('CREATE UNIQUE INDEX CONCURRENTLY tags_name_key ON tags (name)'), /could not create unique index/);
  assert.equal((await indexInfo('tags_name_key')).valid, false);
  await su.query(`DELETE FROM tags WHERE ctid = (SELECT max(ctid) FROM tags WHERE name = 'a')`);

  const p = params(reindex, { target: 'primary', indexes: ['tags_name_key'] });
  const before = await reindex.verify(ctx, p);
  assert.equal(before.fixed, false);
  assert.match(before.detail, /public\.tags_name_key invalid/);
  const plan = await reindex.plan(ctx, p);
  assert.match(plan.summary, /REINDEX INDEX CONCURRENTLY 1 index on "primary": public\.tags_name_key/);
  await reindex.run(ctx, p, AbortSignal.timeout(60_000));
  const v = await reindex.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  assert.equal((await indexInfo('tags_name_key')).valid, true);

  for (const name of ['items_id_idx; DROP TABLE items', '"items_id_idx"', 'pg_class_oid_index']) {
    const bad = params(reindex, { target: 'primary', indexes: [name] });
    await assert.rejects(reindex.plan(ctx, bad), /no index named .* in pg_class of "primary"/);
    await assert.rejects(reindex.run(ctx, bad, AbortSignal.timeout(10_000)), /no index named/);
  }
  assert.equal((await one<{ n: number }>('SELECT count(*)::int AS n FROM items')).n, 10000, 'items is still there');
  assert.equal(reindex.disruptive, true);
});

test('an aborted VACUUM stops on the server and the run fails', async () => {
  const vacuum = action('pg-vacuum');
  // Hold a lock VACUUM must wait for, so the run is in flight when the signal aborts.
  await su.query('CREATE TABLE locked (id int)');
  const holder = await client('lock-holder');
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE locked IN SHARE UPDATE EXCLUSIVE MODE');
  const ac = new AbortController();
  const run = vacuum.run(ctx, params(vacuum, { target: 'primary', table: 'locked' }), ac.signal);
  const pid = await until('VACUUM waiting for its lock', async () => {
    const r = await one<{ pid: number } | undefined>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = 'housekeeper' AND query LIKE 'VACUUM%' AND wait_event_type = 'Lock'`,
    );
    return r?.pid;
  });
  ac.abort(new Error('deadline'));
  await assert.rejects(run);
  await until('the server ended the VACUUM', async () => (await one<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid])).n === 0);
  await holder.query('COMMIT');
});
