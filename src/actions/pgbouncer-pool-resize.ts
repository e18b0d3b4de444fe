import { Type, type Static } from '@sinclair/typebox';
import type pg from 'pg';
import * as sql from '../sql/actions.ts';
import { defineAction, type ActionContext, type Plan } from './action.ts';
import { bouncerTarget, checkSignal, pgTarget, plural, settle, TargetName } from './support.ts';
import { num, str } from '../util/values.ts';

// PgBouncer 1.18 can change a pool's size online only through `SET default_pool_size = N`
// on the admin console: it applies at once to every database that has no pool_size of its
// own in pgbouncer.ini (SHOW DATABASES then shows N for them), and `RELOAD` puts it back to
// the file's value. A database with its own pool_size can only change by editing the file,
// which this service does not do: such a database is refused. The admin console speaks
// only the simple query protocol, so N is an integer checked and formatted by
// sql.bouncerSetDefaultPoolSize, never text from params.
//
// Cap (never beyond what Postgres allows). Read from the Postgres server PgBouncer's pools
// connect to (param `postgres`):
//   budget  = max_connections − superuser_reserved_connections − reserved_connections (16+) − margin
//   others  = client backends open on it now − server connections PgBouncer holds for the
//             databases that follow default_pool_size (SHOW DATABASES current_connections)
//   growth  = Σ over those databases of min(pools × (N + reserve_pool), max_db_connections if set)
//             where pools = the database's (database, user) pools in SHOW POOLS, at least 1
//   N is the largest size with others + growth(N) ≤ budget.
// So every pool that would grow is counted at its full size, connections that are not
// PgBouncer's stay where they are, and `margin` keeps room for the unexpected. It assumes
// the databases that follow the default all point at this one server (one PgBouncer per
// Postgres), as the runbook's deployment has it.

const Params = Type.Object(
  {
    target: TargetName('pgbouncer target (config pgbouncer[].name), its admin console'),
    postgres: TargetName('postgres target PgBouncer connects to (config postgres[].name): the max_connections cap'),
    database: Type.String({ minLength: 1, maxLength: 63, description: 'PgBouncer database whose clients wait (SHOW POOLS database)' }),
    direction: Type.Union([Type.Literal('up'), Type.Literal('down')], { default: 'up' }),
    step: Type.Integer({ minimum: 1, maximum: 1000, default: 5, description: 'up: how much to add per run' }),
    max_pool_size: Type.Integer({ minimum: 1, maximum: 10_000, default: 50, description: 'up: never above this' }),
    margin: Type.Integer({ minimum: 0, maximum: 10_000, default: 5, description: 'connections kept free on Postgres beyond the reserved ones' }),
    baseline: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 10_000, description: 'down: size to return to; without it RELOAD restores pgbouncer.ini\'s value' }),
    ),
  },
  { additionalProperties: false },
);
type P = Static<typeof Params>;

const ADMIN_DB = 'pgbouncer';

interface DbRow {
  name: string;
  poolSize: number;
  reservePool: number;
  maxConnections: number;
  currentConnections: number;
}

interface BouncerState {
  defaultPoolSize: number;
  reservePoolSize: number;
  databases: DbRow[];
  /** (database, user) pools per database. */
  pools: Map<string, number>;
  /** Clients waiting, per database. */
  waiting: Map<string, number>;
}

async function readBouncer(c: pg.PoolClient): Promise<BouncerState> {
  const config = new Map<string, string>();
  for (const r of (await c.query<Record<string, unknown>>(sql.BOUNCER_SHOW_CONFIG)).rows) config.set(str(r['key']), str(r['value']));
  const databases = (await c.query<Record<string, unknown>>(sql.BOUNCER_SHOW_DATABASES)).rows
    .map((r) => ({
      name: str(r['name']),
      poolSize: num(r['pool_size']) ?? 0,
      reservePool: num(r['reserve_pool']) ?? 0,
      maxConnections: num(r['max_connections']) ?? 0,
      currentConnections: num(r['current_connections']) ?? 0,
    }))
    .filter((d) => d.name !== ADMIN_DB);
  const pools = new Map<string, number>();
  const waiting = new Map<string, number>();
  for (const r of (await c.query<Record<string, unknown>>(sql.BOUNCER_SHOW_POOLS)).rows) {
    const db = str(r['database']);
    pools.set(db, (pools.get(db) ?? 0) + 1);
    waiting.set(db, (waiting.get(db) ?? 0) + (num(r['cl_waiting']) ?? 0));
  }
  return {
    defaultPoolSize: num(config.get('default_pool_size')) ?? 0,
    reservePoolSize: num(config.get('reserve_pool_size')) ?? 0,
    databases,
    pools,
    waiting,
  };
}

interface Budget {
  maxConnections: number;
  reserved: number;
  clientBackends: number;
}

async function readBudget(ctx: ActionContext, p: P, signal: AbortSignal): Promise<Budget> {
  return pgTarget(ctx, p.postgres).use(signal, async (c) => {
    const r = (await c.query<Record<string, unknown>>(sql.CONNECTION_BUDGET)).rows[0] ?? {};
    return {
      maxConnections: num(r['max_connections']) ?? 0,
      reserved: (num(r['superuser_reserved']) ?? 0) + (num(r['reserved']) ?? 0),
      clientBackends: num(r['client_backends']) ?? 0,
    };
  });
}

interface Decision {
  /** The size to set, or undefined when there is nothing to do. */
  to: number | undefined;
  /** 'reload' for a return to pgbouncer.ini's value. */
  how: 'set' | 'reload' | 'none';
  from: number;
  reason: string;
  details: Record<string, unknown>;
}

function targetDb(s: BouncerState, p: P): DbRow {
  const db = s.databases.find((d) => d.name === p.database);
  if (!db) throw new Error(`pgbouncer "${p.target}" has no database named ${JSON.stringify(p.database)}`);
  if (db.poolSize !== s.defaultPoolSize) {
    throw new Error(
      `pgbouncer "${p.target}" database ${JSON.stringify(p.database)} has its own pool_size ${db.poolSize} in pgbouncer.ini ` +
        `(default_pool_size is ${s.defaultPoolSize}); PgBouncer 1.18 can change it only by editing the file and RELOAD`,
    );
  }
  return db;
}

/** The largest default_pool_size the Postgres server can take (see the rule at the top). */
function capFor(s: BouncerState, b: Budget, margin: number): { cap: number; budget: number; others: number; growing: string[] } {
  const growingDbs = s.databases.filter((d) => d.poolSize === s.defaultPoolSize);
  const budget = b.maxConnections - b.reserved - margin;
  const pgbouncerConns = growingDbs.reduce((a, d) => a + d.currentConnections, 0);
  const others = Math.max(0, b.clientBackends - pgbouncerConns);
  const growth = (n: number): number =>
    growingDbs.reduce((a, d) => {
      const full = Math.max(1, s.pools.get(d.name) ?? 0) * (n + Math.max(d.reservePool, s.reservePoolSize));
      return a + (d.maxConnections > 0 ? Math.min(full, d.maxConnections) : full);
    }, 0);
  let cap = 0;
  for (let n = 1; n <= 10_000 && others + growth(n) <= budget; n++) cap = n;
  return { cap, budget, others, growing: growingDbs.map((d) => d.name) };
}

async function decide(ctx: ActionContext, p: P, s: BouncerState, signal: AbortSignal): Promise<Decision> {
  const db = targetDb(s, p);
  const from = db.poolSize;
  const waiting = s.waiting.get(p.database) ?? 0;
  if ((p.direction ?? 'up') === 'down') {
    const details = { database: p.database, pool_size: from, clients_waiting: waiting, baseline: p.baseline ?? 'pgbouncer.ini' };
    if (waiting > 0) return { to: undefined, how: 'none', from, reason: `not quiet: ${plural(waiting, 'client')} waiting on ${p.database}`, details };
    if (p.baseline === undefined) return { to: undefined, how: 'reload', from, reason: 'RELOAD to pgbouncer.ini\'s pool sizes', details };
    if (from <= p.baseline) return { to: undefined, how: 'none', from, reason: `pool size ${from} is already at or below baseline ${p.baseline}`, details };
    return { to: p.baseline, how: 'set', from, reason: `back to baseline ${p.baseline}`, details };
  }
  const step = p.step;
  const max = p.max_pool_size;
  const b = await readBudget(ctx, p, signal);
  const c = capFor(s, b, p.margin);
  const details = {
    database: p.database,
    pool_size: from,
    clients_waiting: waiting,
    step,
    max_pool_size: max,
    postgres: p.postgres,
    max_connections: b.maxConnections,
    reserved_connections: b.reserved,
    margin: p.margin,
    other_connections: c.others,
    databases_following_default: c.growing,
    cap: c.cap,
  };
  if (waiting === 0) return { to: undefined, how: 'none', from, reason: `no client waiting on ${p.database}`, details };
  const to = Math.min(from + step, max, c.cap);
  if (to <= from) {
    const why = from >= max ? `max_pool_size ${max}` : `the cap ${c.cap} that ${p.postgres}'s max_connections allows`;
    return { to: undefined, how: 'none', from, reason: `pool size ${from} is already at ${why}`, details };
  }
  const capped = to < Math.min(from + step, max) ? ` (capped by ${p.postgres}'s max_connections)` : '';
  return { to, how: 'set', from, reason: `raise by ${to - from}${capped}`, details };
}

function planOf(p: P, d: Decision): Plan {
  const where = `pgbouncer "${p.target}"`;
  if (d.how === 'reload') return { summary: `RELOAD ${where}: default_pool_size back to pgbouncer.ini's value (now ${d.from})`, details: d.details };
  if (d.how === 'none' || d.to === undefined) return { summary: `${where}: nothing to do (${d.reason})`, details: d.details, nothingToDo: true };
  return { summary: `SET default_pool_size = ${d.to} on ${where} (was ${d.from}; ${d.reason})`, details: { ...d.details, new_pool_size: d.to } };
}

export default defineAction({
  name: 'pgbouncer-pool-resize',
  description:
    'Relieves clients waiting in PgBouncer: direction up raises default_pool_size by `step` (SET on the admin console; ' +
    'PgBouncer 1.18 applies it at once to every database without its own pool_size) up to max_pool_size and never ' +
    'beyond what the Postgres server\'s max_connections allows (counting every pool that follows the default at full ' +
    'size, the other connections open on the server and `margin`). Does nothing when no client waits. Direction down, ' +
    'only when no client waits, sets `baseline` or, without it, RELOADs pgbouncer.ini (which also undoes any other SET). ' +
    'A database with its own pool_size in pgbouncer.ini is refused. Up is not idempotent: each run raises by another ' +
    'step, bounded by max_pool_size and the cap; down is. Verify: no client waits on the database, and its pool size ' +
    'follows the runtime default (down with baseline: equals it).',
  params: Params,
  idempotent: false,
  disruptive: false,
  targetKey: (p) => `pgbouncer:${p.target}`,

  async plan(ctx, p) {
    const signal = checkSignal();
    const s = await bouncerTarget(ctx, p.target).use(signal, readBouncer);
    return planOf(p, await decide(ctx, p, s, signal));
  },

  async run(ctx, p, signal) {
    return bouncerTarget(ctx, p.target).use(signal, async (c) => {
      const s = await readBouncer(c);
      const d = await decide(ctx, p, s, signal);
      signal.throwIfAborted();
      if (d.how === 'none') return { summary: `nothing done: ${d.reason}`, details: d.details };
      if (d.how === 'reload') await c.query(sql.BOUNCER_RELOAD);
      else await c.query(sql.bouncerSetDefaultPoolSize(d.to as number));
      const after = await readBouncer(c);
      const now = after.databases.find((x) => x.name === p.database)?.poolSize;
      if (d.how === 'set' && now !== d.to) {
        // The database turned out to have its own pool_size equal to the old default: undo.
        await c.query(sql.bouncerSetDefaultPoolSize(d.from));
        throw new Error(`database ${JSON.stringify(p.database)} did not follow default_pool_size (still ${now}); change undone`);
      }
      return {
        summary: `pgbouncer "${p.target}" pool size of ${p.database}: ${d.from} → ${now} (${d.how === 'reload' ? 'RELOAD' : d.reason})`,
        details: { ...d.details, new_pool_size: now, default_pool_size: after.defaultPoolSize },
      };
    });
  },

  async verify(ctx, p) {
    return settle(async () => {
      const s = await bouncerTarget(ctx, p.target).use(checkSignal(), readBouncer);
      const db = s.databases.find((d) => d.name === p.database);
      if (!db) return { fixed: false, detail: `no database named ${JSON.stringify(p.database)}` };
      const waiting = s.waiting.get(p.database) ?? 0;
      const follows = db.poolSize === s.defaultPoolSize;
      const atBaseline = p.direction !== 'down' || p.baseline === undefined || db.poolSize === p.baseline;
      return {
        fixed: waiting === 0 && follows && atBaseline,
        detail: `${p.database}: pool_size ${db.poolSize} (default_pool_size ${s.defaultPoolSize}), ${plural(waiting, 'client')} waiting`,
      };
    });
  },
});
