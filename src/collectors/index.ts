import type { AnyCollector } from './collector.ts';
import postgres from './postgres.ts';
import pgbouncer from './pgbouncer.ts';
import redis from './redis.ts';

/** Every collector the service knows, in the order their metrics appear. */
export const collectors: readonly AnyCollector[] = [postgres, pgbouncer, redis];
