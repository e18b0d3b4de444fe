import type { AnyAction } from './action.ts';
import archiveOldRows from './archive-old-rows.ts';
import backupRun from './backup-run.ts';
import backupVerify from './backup-verify.ts';
import cleanupOldRows from './cleanup-old-rows.ts';
import esDeleteOldIndices from './es-delete-old-indices.ts';
import esForcemerge from './es-forcemerge.ts';
import esSnapshot from './es-snapshot.ts';
import exec from './exec.ts';
import faissOptimize from './faiss-optimize.ts';
import faissRebuild from './faiss-rebuild.ts';
import faissRestore from './faiss-restore.ts';
import faissRetrain from './faiss-retrain.ts';
import pgbouncerPoolResize from './pgbouncer-pool-resize.ts';
import pgCancelLongQueries from './pg-cancel-long-queries.ts';
import pgReindex from './pg-reindex.ts';
import pgTerminateIdleInTransaction from './pg-terminate-idle-in-transaction.ts';
import pgVacuum from './pg-vacuum.ts';
import redisFlush from './redis-flush.ts';
import redisWarm from './redis-warm.ts';
import restoreTest from './restore-test.ts';

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
  backupRun,
  backupVerify,
  restoreTest,
  cleanupOldRows,
  archiveOldRows,
  esDeleteOldIndices,
  esForcemerge,
  esSnapshot,
  faissRebuild,
  faissRetrain,
  faissRestore,
  faissOptimize,
];
