import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { PgTarget } from './postgres.ts';
import { RedisTarget } from './redis.ts';
import { ElasticsearchTarget } from './elasticsearch.ts';

/** Every configured system's client, built once from config and shared by collectors and actions. */
export interface Targets {
  postgres: PgTarget[];
  pgbouncer: PgTarget[];
  redis: RedisTarget[];
  elasticsearch: ElasticsearchTarget[];
}

export function createTargets(config: Config, log: Logger): Targets {
  const timeout = config.server.scrapeTimeoutMs;
  return {
    postgres: config.postgres.map(
      (t) =>
        new PgTarget(
          t.name,
          t.url,
          { maxConnections: 2, connectTimeoutMs: timeout, statementTimeoutMs: timeout, applicationName: 'housekeeper' },
          log,
        ),
    ),
    // The admin console accepts no startup parameters beyond the basics.
    pgbouncer: config.pgbouncer.map((t) => new PgTarget(t.name, t.url, { maxConnections: 1, connectTimeoutMs: timeout }, log)),
    redis: config.redis.map(
      (t) => new RedisTarget(t.name, t.url, t.cacheDbs, { commandTimeoutMs: timeout, connectTimeoutMs: timeout }, log),
    ),
    elasticsearch: config.elasticsearch.map((t) => new ElasticsearchTarget(t, { requestTimeoutMs: timeout })),
  };
}

export async function closeTargets(t: Targets): Promise<void> {
  await Promise.allSettled([...t.postgres, ...t.pgbouncer, ...t.redis, ...t.elasticsearch].map((x) => x.close()));
}
