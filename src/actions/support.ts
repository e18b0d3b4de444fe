import { Type } from '@sinclair/typebox';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import * as sql from '../sql/actions.ts';
import type { PgTarget } from '../targets/postgres.ts';
import type { RedisTarget } from '../targets/redis.ts';
import type { ActionContext, Verification } from './action.ts';

// Helpers the action files share: param schemas, target look-up, bounded waits, and the
// dedicated connections long or state-changing work needs.

/** A target's name as config allows it; the action looks it up, never uses it as text. */
export const TargetName = (description: string) =>
  Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$', description });

/**
 * A Postgres object name (table, index, schema). Any text up to NAMEDATALEN-1 bytes: it is
 * only ever compared, as a bound value, with names in the catalog; the statement then uses
 * the catalog's name, quoted.
 */
export const ObjectName = (description: string) => Type.String({ minLength: 1, maxLength: 63, description });

/** How long plan() and verify() may take: they have no signal of their own. */
export const CHECK_TIMEOUT_MS = 30_000;

export function pgTarget(ctx: ActionContext, name: string): PgTarget {
  const t = ctx.targets.postgres.find((x) => x.name === name);
  if (!t) throw new Error(`no postgres target named "${name}" in config`);
  return t;
}

export function bouncerTarget(ctx: ActionContext, name: string): PgTarget {
  const t = ctx.targets.pgbouncer.find((x) => x.name === name);
  if (!t) throw new Error(`no pgbouncer target named "${name}" in config`);
  return t;
}

export function redisTarget(ctx: ActionContext, name: string): RedisTarget {
  const t = ctx.targets.redis.find((x) => x.name === name);
  if (!t) throw new Error(`no redis target named "${name}" in config`);
  return t;
}

/** A signal for plan/verify, which the contract gives none: a fixed deadline. */
export function checkSignal(): AbortSignal {
  return AbortSignal.timeout(CHECK_TIMEOUT_MS);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Re-checks until the condition clears or the tries run out (bounded: tries × interval).
 * A server applies some changes a moment after it acknowledges them (a cancelled query
 * ends at its next interrupt check, an async flush frees memory in a background thread,
 * PgBouncer serves waiting clients on its next loop), so verify gives it that moment.
 */
export async function settle(check: () => Promise<Verification>, tries = 20, intervalMs = 250): Promise<Verification> {
  let last = await check();
  for (let i = 1; i < tries && !last.fixed; i++) {
    await sleep(intervalMs);
    last = await check();
  }
  return last;
}

export { sleep };

/**
 * Runs fn on a dedicated connection to one Redis database: a duplicate of the target's
 * connection with its own SELECT, so the shared connection (and the collector on it) never
 * changes database. It does not reconnect: a broken connection fails the action. Aborting
 * the signal closes it, which fails the command in flight.
 */
export async function withRedisDb<R>(target: RedisTarget, db: number, signal: AbortSignal, fn: (c: Redis) => Promise<R>): Promise<R> {
  signal.throwIfAborted();
  const conn = target.client.duplicate({
    db,
    lazyConnect: true,
    enableOfflineQueue: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectionName: 'housekeeper-action',
  });
  conn.on('error', () => {}); // errors reach the awaiting command; no unhandled 'error' event
  const onAbort = (): void => conn.disconnect(false);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await conn.connect();
    signal.throwIfAborted();
    return await fn(conn);
  } catch (err) {
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
    conn.disconnect(false);
  }
}

/** INFO memory's used_memory and maxmemory, in bytes. */
export async function redisMemory(c: Redis): Promise<{ used: number; max: number }> {
  const info = await c.info('memory');
  const field = (k: string): number => {
    const m = new RegExp(`^${k}:(\\d+)`, 'm').exec(info);
    return m ? Number(m[1]) : 0;
  };
  return { used: field('used_memory'), max: field('maxmemory') };
}

/**
 * Runs fn with a statement timeout of its own (maintenance can outlast the pool's default,
 * which is the scrape deadline) and, on PG 14+, client_connection_check_interval, so that
 * when the signal drops the connection the server stops the statement too. Both are reset
 * before the connection goes back to the pool.
 */
export async function withMaintenanceSession<R>(
  target: PgTarget,
  signal: AbortSignal,
  timeoutMs: number,
  fn: (c: pg.PoolClient) => Promise<R>,
): Promise<R> {
  return target.use(signal, async (c) => {
    const version = Number((await c.query<{ version: number }>(sql.SERVER_VERSION_NUM)).rows[0]?.version ?? 0);
    const checks = version >= 140000;
    await c.query(sql.SET_STATEMENT_TIMEOUT, [String(timeoutMs)]);
    if (checks) await c.query(sql.SET_CLIENT_CHECK, ['1000']);
    const reset = async (): Promise<void> => {
      await c.query(sql.RESET_STATEMENT_TIMEOUT);
      if (checks) await c.query(sql.RESET_CLIENT_CHECK);
    };
    let result: R;
    try {
      result = await fn(c);
    } catch (err) {
      // An aborted run's connection is destroyed by use(); otherwise reset it, and if that
      // fails throw a plain Error so use() destroys it rather than pooling our settings.
      if (!signal.aborted) {
        try {
          await reset();
        } catch {
          throw new Error(`${(err as Error).message} (session settings could not be reset)`);
        }
      }
      throw err;
    }
    try {
      await reset();
    } catch (err) {
      throw new Error(`session settings could not be reset: ${(err as Error).message}`);
    }
    return result;
  });
}

/** Collects the server's NOTICE/WARNING messages while fn runs (e.g. VACUUM's "skipping"). */
export async function collectNotices<R>(c: pg.PoolClient, fn: () => Promise<R>): Promise<{ result: R; notices: string[] }> {
  const notices: string[] = [];
  const onNotice = (n: { message?: string; severity?: string }): void => {
    if (notices.length < 50) notices.push(`${n.severity ?? 'NOTICE'}: ${n.message ?? ''}`);
  };
  c.on('notice', onNotice);
  try {
    return { result: await fn(), notices };
  } finally {
    c.off('notice', onNotice);
  }
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
