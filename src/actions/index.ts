import type { AnyAction } from './action.ts';
import exec from './exec.ts';
import pgbouncerPoolResize from './pgbouncer-pool-resize.ts';
import pgCancelLongQueries from './pg-cancel-long-queries.ts';
import pgReindex from './pg-reindex.ts';
import pgTerminateIdleInTransaction from './pg-terminate-idle-in-transaction.ts';
import pgVacuum from './pg-vacuum.ts';
import redisFlush from './redis-flush.ts';
import redisWarm from './redis-warm.ts';

/** Every remediation action, by name in rules' `action:`. */
export const actions: readonly AnyAction[] = [
  redisFlush,
  redisWarm,
  pgbouncerPoolResize,
  pgCancelLongQueries,
  pgTerminateIdleInTransaction,
  pgVacuum,
  pgReindex,
  exec,
];
