// The whole stack for end-to-end tests: primary, replica, PgBouncer (to the primary), Redis.
import { startPgBouncer, type PgBouncerServer } from './pgbouncer.ts';
import { startPostgres, startReplica, type PgServer } from './postgres.ts';
import { startRedis, type RedisServer } from './redis.ts';

export interface Stack {
  primary: PgServer;
  replica: PgServer;
  pgbouncer: PgBouncerServer;
  redis: RedisServer;
  /** Stops and destroys all four (processes gone, temp dirs removed). */
  stop(): Promise<void>;
}

export interface StackOptions {
  postgres?: { settings?: Record<string, string> };
  pgbouncer?: { poolSize?: number; maxClientConn?: number };
  redis?: { maxmemory?: string; maxmemoryPolicy?: string; persistence?: boolean };
}

async function destroyAll(servers: ReadonlyArray<{ destroy(): Promise<void> } | undefined>): Promise<void> {
  const results = await Promise.allSettled(servers.map((s) => s?.destroy()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Starts all four: Redis in parallel with Postgres; replica and PgBouncer in parallel once the primary is up. */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const redisP = startRedis(opts.redis);
  const primaryP = startPostgres(opts.postgres);
  const replicaP = primaryP.then((p) => startReplica(p));
  const bouncerP = primaryP.then((p) => startPgBouncer(p, opts.pgbouncer));
  const settled = await Promise.allSettled([primaryP, replicaP, bouncerP, redisP]);
  const [primary, replica, pgbouncer, redis] = settled.map((r) => (r.status === 'fulfilled' ? r.value : undefined)) as [
    PgServer | undefined,
    PgServer | undefined,
    PgBouncerServer | undefined,
    RedisServer | undefined,
  ];
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed || !primary || !replica || !pgbouncer || !redis) {
    await destroyAll([replica, pgbouncer, redis, primary]).catch(() => {});
    throw failed?.reason ?? new Error('startStack failed');
  }
  return {
    primary,
    replica,
    pgbouncer,
    redis,
    // Replica and PgBouncer first, so they do not log connection errors while the primary goes.
    stop: async () => {
      await destroyAll([replica, pgbouncer, redis]);
      await primary.destroy();
    },
  };
}
