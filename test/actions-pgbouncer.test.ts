import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { Value } from '@sinclair/typebox/value';
import type { ActionContext, AnyAction } from '../src/actions/action.ts';
import { bouncerSetDefaultPoolSize } from '../src/sql/actions.ts';
import { closeTargets, type Targets } from '../src/targets/index.ts';
import { startPgBouncer, type PgBouncerServer } from './harness/pgbouncer.ts';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { action, actionContext, params as checkedParams } from './helpers/actions.ts';
import { poller } from './helpers/wait.ts';

// pgbouncer-pool-resize against a real PgBouncer 1.18 in front of a real Postgres 15 with
// max_connections 20, so the cap is reached quickly.

let primary: PgServer;
let bouncer: PgBouncerServer;
let targets: Targets;
let ctx: ActionContext;
let admin: pg.Client;
const clients: pg.Client[] = [];

const resize = (): AnyAction => action('pgbouncer-pool-resize');

function params(p: Record<string, unknown>): Record<string, unknown> {
  return checkedParams(resize(), p);
}

const until = poller({ tries: 100, intervalMs: 100 });

async function poolSize(db = 'app'): Promise<number> {
  const r = (await admin.query('SHOW DATABASES')).rows.find((x: { name: string }) => x.name === db);
  return Number(r.pool_size);
}

async function waiting(db = 'app'): Promise<number> {
  return (await admin.query('SHOW POOLS')).rows
    .filter((x: { database: string }) => x.database === db)
    .reduce((a: number, x: { cl_waiting: number }) => a + Number(x.cl_waiting), 0);
}

async function through(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: bouncer.url('app') });
  c.on('error', () => {});
  await c.connect();
  clients.push(c);
  return c;
}

/** n clients each holding a server connection in an open transaction (transaction pooling). */
async function holders(n: number): Promise<pg.Client[]> {
  const hs: pg.Client[] = [];
  for (let i = 0; i < n; i++) {
    const h = await through();
    await h.query('BEGIN');
    await h.query('SELECT 1');
    hs.push(h);
  }
  return hs;
}

before(async () => {
  primary = await startPostgres({ settings: { max_connections: '20' } });
  bouncer = await startPgBouncer(primary, { poolSize: 1, maxClientConn: 100 });
  admin = new pg.Client({ connectionString: bouncer.adminUrl() });
  await admin.connect();
  ctx = actionContext(`
postgres:
  - name: primary
    url: ${primary.url()}
pgbouncer:
  - name: bouncer
    url: ${bouncer.adminUrl()}
`);
  targets = ctx.targets;
});

after(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await admin?.end().catch(() => {});
  if (targets) await closeTargets(targets);
  await bouncer?.destroy();
  await primary?.destroy();
});

test('up: raises the pool by a step when clients wait; waiting clients are served', async () => {
  const a = resize();
  const p = params({ target: 'bouncer', postgres: 'primary', database: 'app', step: 2, max_pool_size: 10 });
  assert.equal((await a.plan(ctx, p)).nothingToDo, true, 'no client waiting: nothing to do');

  const [holder] = await holders(1);
  const waiter = await through();
  const queued = waiter.query('SELECT 2 AS two');
  await until('a waiting client', async () => (await waiting()) >= 1);
  assert.equal((await a.verify(ctx, p)).fixed, false);

  const plan = await a.plan(ctx, p);
  assert.equal(plan.nothingToDo, undefined);
  assert.match(plan.summary, /^SET default_pool_size = 3 on pgbouncer "bouncer" \(was 1; raise by 2\)$/);
  assert.equal(await poolSize(), 1, 'plan changed nothing');

  const r = await a.run(ctx, p, AbortSignal.timeout(30_000));
  assert.equal(r.details?.['new_pool_size'], 3);
  assert.equal(await poolSize(), 3);
  assert.equal((await queued).rows[0].two, 2, 'the waiting client got a server connection');
  const v = await a.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  await holder?.query('COMMIT');
});

test('up: capped by what max_connections allows, then nothing more to do', async () => {
  const a = resize();
  const p = params({ target: 'bouncer', postgres: 'primary', database: 'app', step: 100, max_pool_size: 1000, margin: 5 });
  const size = await poolSize();
  const hs = await holders(size);
  const waiter = await through();
  const queued = waiter.query('SELECT 3 AS three');
  await until('a waiting client', async () => (await waiting()) >= 1);

  const r = await a.run(ctx, p, AbortSignal.timeout(30_000));
  const d = r.details as Record<string, unknown>;
  const now = await poolSize();
  assert.equal(d['new_pool_size'], now);
  assert.equal(d['cap'], now, 'raised to the cap, not by the full step');
  assert.ok(now > size && now < size + 100);
  assert.equal(d['max_connections'], 20);
  assert.equal(d['reserved_connections'], 3);
  // app and postgres both follow default_pool_size: each could grow to the new size.
  assert.deepEqual(d['databases_following_default'], ['app', 'postgres']);
  const budget = 20 - 3 - 5;
  const others = Number(d['other_connections']);
  assert.ok(others + 2 * now <= budget, `within the budget: ${JSON.stringify(d)}`);
  assert.ok(others + 2 * (now + 1) > budget, 'and the largest size that is');
  assert.equal((await queued).rows[0].three, 3);

  // Clients wait again at the cap: nothing more to do, and it says why.
  const more = await holders(now - size);
  const waiter2 = await through();
  const queued2 = waiter2.query('SELECT 4 AS four');
  await until('a waiting client at the cap', async () => (await waiting()) >= 1);
  const plan = await a.plan(ctx, p);
  assert.equal(plan.nothingToDo, true);
  assert.match(plan.summary, /already at the cap \d+ that primary's max_connections allows/);
  assert.equal((await a.run(ctx, p, AbortSignal.timeout(30_000))).summary.startsWith('nothing done'), true);
  assert.equal(await poolSize(), now);
  // Down refuses while clients wait.
  const down = await a.plan(ctx, params({ target: 'bouncer', postgres: 'primary', database: 'app', direction: 'down', baseline: 1 }));
  assert.equal(down.nothingToDo, true);
  assert.match(down.summary, /not quiet: 1 client waiting on app/);
  for (const h of [...hs, ...more]) await h.query('COMMIT');
  assert.equal((await queued2).rows[0].four, 4);
});

test('down: back to a baseline, or with RELOAD to pgbouncer.ini\'s value, once quiet', async () => {
  const a = resize();
  await until('no waiting client', async () => (await waiting()) === 0);
  const toTwo = params({ target: 'bouncer', postgres: 'primary', database: 'app', direction: 'down', baseline: 2 });
  const plan = await a.plan(ctx, toTwo);
  assert.match(plan.summary, /^SET default_pool_size = 2 on pgbouncer "bouncer" \(was \d+; back to baseline 2\)$/);
  await a.run(ctx, toTwo, AbortSignal.timeout(30_000));
  assert.equal(await poolSize(), 2);
  assert.equal((await a.verify(ctx, toTwo)).fixed, true);
  assert.equal((await a.plan(ctx, toTwo)).nothingToDo, true, 'idempotent: already at baseline');

  const reload = params({ target: 'bouncer', postgres: 'primary', database: 'app', direction: 'down' });
  assert.match((await a.plan(ctx, reload)).summary, /^RELOAD pgbouncer "bouncer"/);
  await a.run(ctx, reload, AbortSignal.timeout(30_000));
  assert.equal(await poolSize(), 1, 'pgbouncer.ini says 1');
  assert.equal((await a.verify(ctx, reload)).fixed, true);
});

test('refuses unknown databases, text in params, and a database with its own pool_size', async () => {
  const a = resize();
  await assert.rejects(a.plan(ctx, params({ target: 'bouncer', postgres: 'primary', database: 'app; SHUTDOWN' })), /has no database named "app; SHUTDOWN"/);
  assert.equal(Value.Check(a.params, { target: 'bouncer', postgres: 'primary', database: 'app', step: '1; SHUTDOWN' }), false);
  assert.equal(Value.Check(a.params, { target: 'bouncer', postgres: 'primary', database: 'app', max_pool_size: 0 }), false);
  assert.equal(Value.Check(a.params, { target: 'bouncer', postgres: 'primary', database: 'app', direction: 'sideways' }), false);
  for (const bad of [0, -1, 1.5, Number.NaN, 10_001]) assert.throws(() => bouncerSetDefaultPoolSize(bad), /default_pool_size must be an integer/);
  assert.equal(bouncerSetDefaultPoolSize(7), 'SET default_pool_size = 7');

  // Give the postgres database its own pool_size in pgbouncer.ini, as an operator would.
  const ini = readFileSync(bouncer.configFile, 'utf8');
  writeFileSync(bouncer.configFile, ini.replace(/^postgres = /m, 'postgres = pool_size=4 '));
  await admin.query('RELOAD');
  try {
    assert.equal(await poolSize('postgres'), 4);
    await assert.rejects(
      a.plan(ctx, params({ target: 'bouncer', postgres: 'primary', database: 'postgres' })),
      /database "postgres" has its own pool_size 4 in pgbouncer\.ini \(default_pool_size is 1\); PgBouncer 1\.18 can change it only by editing the file and RELOAD/,
    );
  } finally {
    writeFileSync(bouncer.configFile, ini);
    await admin.query('RELOAD');
  }
});
