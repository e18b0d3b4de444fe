import { Type } from '@sinclair/typebox';
import pg from 'pg';
import * as sql from '../sql/cleanup.ts';
import { defineAction } from './action.ts';
import {
  atLeast,
  ageText,
  batchLoop,
  commonParams,
  countOlder,
  cutoffOf,
  display,
  firesOnDelete,
  lastRuns,
  referencingKeys,
  sourceTable,
  perEntry,
} from './old-rows.ts';
import { checkSignal, pgTarget, withMaintenanceSession } from './support.ts';

// The runbook's "chat logs: remove older than 90 days". Which table, which time column and
// how old come from config (actions.cleanup.<entry>); the param only names the entry. Rows
// go in batches of batch_size, each one DELETE (its own transaction), with a pause between
// batches so replicas, autovacuum and other sessions keep up.

const Params = Type.Object(commonParams('cleanup'), { additionalProperties: false });

const ACTION = 'cleanup-old-rows';
const { entry, path, targetKey, runKey } = perEntry('cleanup');

export default defineAction({
  name: ACTION,
  description:
    'Deletes the rows of a configured table (actions.cleanup.<entry>: postgres, table, column, older_than, batch_size, pause) ' +
    'whose time column is older than older_than, in batches of batch_size rows (one DELETE, one transaction each; rows ' +
    'other sessions hold locked are skipped, not waited for) with a pause between batches. The table must be an ordinary ' +
    'table in the catalog and the column a timestamp, timestamptz or date column, else a clear error; identifiers are ' +
    "quoted, the cutoff (the database's now() minus older_than, fixed for the run) and the batch size are bound. Stops " +
    'between batches when aborted, after max_batches, or after max_seconds (the rest waits for the next run). ' +
    'Idempotent. Verify: no row older than the run\'s cutoff remains.',
  params: Params,
  idempotent: true,
  disruptive: false,
  targetKey,

  async plan(ctx, p) {
    const e = entry(ctx, p);
    return pgTarget(ctx, e.postgres).use(checkSignal(), async (c) => {
      const t = await sourceTable(c, e, path(p), ACTION);
      const cutoff = await cutoffOf(c, e.olderThanMs);
      const n = await countOlder(c, t, cutoff);
      const cascades = (await referencingKeys(c, t.oid)).filter(firesOnDelete);
      const name = display(t.schema, t.table);
      return {
        summary:
          n === 0
            ? `no rows of ${name} older than ${ageText(e.olderThanMs)} (${pg.escapeIdentifier(t.column)} < ${cutoff}) on "${e.postgres}"`
            : `delete ${atLeast(n)} rows of ${name} older than ${ageText(e.olderThanMs)} (${pg.escapeIdentifier(t.column)} < ${cutoff}) ` +
              `on "${e.postgres}", in batches of ${e.batchSize}` +
              (cascades.length ? `; foreign keys fire on delete: ${cascades.map((k) => `${display(k.schema, k.table)} ${k.on_delete}`).join(', ')}` : ''),
        details: {
          postgres: e.postgres,
          schema: t.schema,
          table: t.table,
          column: t.column,
          column_type: t.columnType,
          cutoff,
          rows: n,
          batch_size: e.batchSize,
          pause_ms: e.pauseMs,
          foreign_keys_on_delete: cascades,
        },
        nothingToDo: n === 0,
      };
    });
  },

  async run(ctx, p, signal) {
    const e = entry(ctx, p);
    const timeoutMs = p.timeout_seconds * 1000;
    return withMaintenanceSession(pgTarget(ctx, e.postgres), signal, timeoutMs, async (c) => {
      const t = await sourceTable(c, e, path(p), ACTION);
      const cutoff = await cutoffOf(c, e.olderThanMs);
      lastRuns.set(runKey(p), { cutoff, rows: 0 });
      const text = sql.deleteOldBatch(c.escapeIdentifier(t.schema), c.escapeIdentifier(t.table), c.escapeIdentifier(t.column));
      const loop = await batchLoop(
        { pauseMs: e.pauseMs, maxBatches: p.max_batches, maxSeconds: p.max_seconds, verb: 'deleted' },
        signal,
        async () => (await c.query(text, [cutoff, e.batchSize])).rowCount ?? 0,
      );
      lastRuns.set(runKey(p), { cutoff, rows: loop.rows });
      const name = display(t.schema, t.table);
      return {
        summary:
          `deleted ${loop.rows} rows of ${name} older than ${cutoff} in ${loop.batches} batches` +
          (loop.stoppedBy ? `; stopped by ${loop.stoppedBy}, the rest waits for the next run` : ''),
        details: { schema: t.schema, table: t.table, column: t.column, cutoff, rows: loop.rows, batches: loop.batches, stopped_by: loop.stoppedBy ?? null },
      };
    });
  },

  async verify(ctx, p) {
    const e = entry(ctx, p);
    return pgTarget(ctx, e.postgres).use(checkSignal(), async (c) => {
      const t = await sourceTable(c, e, path(p), ACTION);
      const cutoff = lastRuns.get(runKey(p))?.cutoff ?? (await cutoffOf(c, e.olderThanMs));
      const n = await countOlder(c, t, cutoff);
      const name = display(t.schema, t.table);
      return {
        fixed: n === 0,
        detail: n === 0 ? `no rows of ${name} older than ${cutoff} remain` : `${atLeast(n)} rows of ${name} older than ${cutoff} remain`,
      };
    });
  },
});
