import { Type, type Static } from '@sinclair/typebox';
import pg from 'pg';
import type { ArchiveConfig } from '../config.ts';
import * as sql from '../sql/cleanup.ts';
import { defineAction } from './action.ts';
import {
  ageText,
  atLeast,
  batchLoop,
  commonParams,
  countOlder,
  cutoffOf,
  display,
  firesOnDelete,
  lastRuns,
  lookUp,
  referencingKeys,
  sourceTable,
  type Relation,
  perEntry,
} from './old-rows.ts';
import { checkSignal, pgTarget, withMaintenanceSession } from './support.ts';
import { num, str } from '../util/values.ts';

// The runbook's "conversations: archive older than 30 days". Rows whose time column is older
// than older_than move from the configured table to its archive table, a batch at a time,
// each batch one transaction: WITH moved AS (DELETE ... RETURNING) INSERT INTO archive
// SELECT ... FROM moved. A row is in the source or in the archive, never both or neither.
//
// The archive table: when absent it is created LIKE the source (columns, NOT NULL, CHECK
// constraints, indexes, storage, comments; not defaults, identity or generation, so archived
// rows keep their values), unless create_archive is false. When present, every source column
// must exist in it with the same type (extra archive columns need a default or NULL); rows
// are inserted by column name, so column order does not matter.

const Params = Type.Object(commonParams('archive'), { additionalProperties: false });
type P = Static<typeof Params>;

const ACTION = 'archive-old-rows';
const { entry, path, targetKey, runKey } = perEntry('archive');

interface Column {
  name: string;
  type: string;
  generated: string;
  identity: string;
  not_null: boolean;
  has_default: boolean;
}

async function columnsOf(c: pg.ClientBase, oid: string): Promise<Column[]> {
  const res = await c.query<Record<string, unknown>>(sql.RELATION_COLUMNS, [oid]);
  return res.rows.map((r) => ({
    name: str(r['name']),
    type: str(r['type']),
    generated: str(r['generated']),
    identity: str(r['identity']),
    not_null: r['not_null'] === true,
    has_default: r['has_default'] === true,
  }));
}

type Archive =
  | { exists: false; schema: string; table: string }
  | { exists: true; schema: string; table: string; returned: string[]; inserted: string[] };

/**
 * The archive table as the catalog has it, checked against the source: absent (and creatable
 * by us), or an ordinary or partitioned table we may insert into that takes every source
 * column with the same type.
 */
async function archiveTable(c: pg.ClientBase, e: ArchiveConfig, p: P, src: Relation): Promise<Archive> {
  const schema = e.archiveSchema ?? src.schema;
  const name = display(schema, e.archiveTable);
  const [a] = await lookUp(c, schema, e.archiveTable, undefined);
  if (!a) {
    if (!e.createArchive) throw new Error(`${path(p)}: archive table ${name} does not exist and create_archive is false`);
    const s = (await c.query<{ can_create: boolean }>(sql.SCHEMA_PRIVILEGES, [schema])).rows[0];
    if (!s) throw new Error(`${path(p)}: schema ${pg.escapeIdentifier(schema)} of archive table ${name} does not exist`);
    if (!s.can_create) throw new Error(`${path(p)}: archive table ${name} does not exist and our role may not create tables in ${pg.escapeIdentifier(schema)}`);
    return { exists: false, schema, table: e.archiveTable };
  }
  if (a.oid === src.oid) throw new Error(`${path(p)}: the archive table is the source table ${name}`);
  if (a.kind !== 'r' && a.kind !== 'p') throw new Error(`${path(p)}: archive ${name} is not a table (relkind ${a.kind})`);
  if (!a.canInsert) throw new Error(`${path(p)}: our role may not INSERT into archive table ${name}`);
  const srcCols = await columnsOf(c, src.oid);
  const arcCols = new Map((await columnsOf(c, a.oid)).map((x) => [x.name, x]));
  const inserted: string[] = [];
  for (const col of srcCols) {
    const ac = arcCols.get(col.name);
    if (!ac) throw new Error(`${path(p)}: archive table ${name} has no column ${pg.escapeIdentifier(col.name)} (the source has it)`);
    if (ac.type !== col.type) {
      throw new Error(`${path(p)}: column ${pg.escapeIdentifier(col.name)} is ${col.type} in the source but ${ac.type} in archive table ${name}`);
    }
    if (ac.generated === '') inserted.push(col.name);
    arcCols.delete(col.name);
  }
  for (const extra of arcCols.values()) {
    if (extra.not_null && !extra.has_default && extra.identity === '' && extra.generated === '') {
      throw new Error(`${path(p)}: archive table ${name} has column ${pg.escapeIdentifier(extra.name)} NOT NULL without a default, which the source cannot fill`);
    }
  }
  if (!inserted.includes(src.column as string)) {
    throw new Error(`${path(p)}: column ${pg.escapeIdentifier(src.column as string)} is generated in archive table ${name}`);
  }
  return { exists: true, schema: a.schema, table: a.table, returned: srcCols.map((x) => x.name), inserted };
}

/** Foreign keys that would change or delete other rows when a source row leaves: refused. */
async function checkForeignKeys(c: pg.ClientBase, p: P, src: Relation): Promise<string[]> {
  const keys = await referencingKeys(c, src.oid);
  const firing = keys.filter(firesOnDelete);
  if (firing.length > 0) {
    throw new Error(
      `${path(p)}: moving rows out of ${display(src.schema, src.table)} would fire ON DELETE ${firing.map((k) => `${k.on_delete.toUpperCase()} of ${display(k.schema, k.table)} (${k.name})`).join(', ')}; ` +
        'archive the referencing rows first or change the foreign key',
    );
  }
  // NO ACTION / RESTRICT keys only make a batch fail (and roll back) if a row is still referenced.
  return keys.map((k) => `${display(k.schema, k.table)} (${k.name})`);
}

async function countArchived(c: pg.ClientBase, a: { schema: string; table: string }, column: string, cutoff: string): Promise<number> {
  const text = sql.countAllOlder(c.escapeIdentifier(a.schema), c.escapeIdentifier(a.table), c.escapeIdentifier(column));
  return num((await c.query<{ n: string }>(text, [cutoff])).rows[0]?.n) ?? 0;
}

export default defineAction({
  name: ACTION,
  description:
    'Moves the rows of a configured table (actions.archive.<entry>: postgres, table, column, archive_table, older_than, ' +
    'batch_size, pause) whose time column is older than older_than into the archive table, in batches of batch_size, each ' +
    'batch one transaction (WITH moved AS (DELETE ... RETURNING) INSERT INTO archive ...): a row is in one table or the ' +
    'other, never both or neither. An absent archive table is created LIKE the source (constraints, indexes, comments; no ' +
    'defaults, identity or generation) unless create_archive is false; an existing one must take every source column with ' +
    'the same type. Refused when a foreign key would cascade (or set null) on the moved rows. Table and column are checked ' +
    'against the catalog and quoted; cutoff and batch size are bound. Stops between batches when aborted, after ' +
    'max_batches or max_seconds. Idempotent. Verify: no source row older than the run\'s cutoff remains, and the archive ' +
    'gained at least the rows moved.',
  params: Params,
  idempotent: true,
  disruptive: false,
  targetKey,

  async plan(ctx, p) {
    const e = entry(ctx, p);
    return pgTarget(ctx, e.postgres).use(checkSignal(), async (c) => {
      const src = await sourceTable(c, e, path(p), ACTION);
      const referencedBy = await checkForeignKeys(c, p, src);
      const arc = await archiveTable(c, e, p, src);
      const cutoff = await cutoffOf(c, e.olderThanMs);
      const n = await countOlder(c, src, cutoff);
      const from = display(src.schema, src.table);
      const to = display(arc.schema, arc.table) + (arc.exists ? '' : ' (created LIKE the source)');
      return {
        summary:
          n === 0
            ? `no rows of ${from} older than ${ageText(e.olderThanMs)} (${pg.escapeIdentifier(src.column)} < ${cutoff}) on "${e.postgres}"`
            : `move ${atLeast(n)} rows of ${from} older than ${ageText(e.olderThanMs)} (${pg.escapeIdentifier(src.column)} < ${cutoff}) ` +
              `to ${to} on "${e.postgres}", in batches of ${e.batchSize}`,
        details: {
          postgres: e.postgres,
          schema: src.schema,
          table: src.table,
          column: src.column,
          archive_schema: arc.schema,
          archive_table: arc.table,
          archive_exists: arc.exists,
          cutoff,
          rows: n,
          batch_size: e.batchSize,
          pause_ms: e.pauseMs,
          referenced_by: referencedBy,
        },
        nothingToDo: n === 0,
      };
    });
  },

  async run(ctx, p, signal) {
    const e = entry(ctx, p);
    const timeoutMs = p.timeout_seconds * 1000;
    return withMaintenanceSession(pgTarget(ctx, e.postgres), signal, timeoutMs, async (c) => {
      const src = await sourceTable(c, e, path(p), ACTION);
      await checkForeignKeys(c, p, src);
      let arc = await archiveTable(c, e, p, src);
      let created = false;
      if (!arc.exists) {
        await c.query(sql.createArchiveLike(c.escapeIdentifier(arc.schema), c.escapeIdentifier(arc.table), c.escapeIdentifier(src.schema), c.escapeIdentifier(src.table)));
        created = true;
        arc = await archiveTable(c, e, p, src);
        if (!arc.exists) throw new Error(`${path(p)}: archive table ${display(arc.schema, arc.table)} was created but cannot be found`);
      }
      const a = arc;
      const cutoff = await cutoffOf(c, e.olderThanMs);
      const archiveBefore = await countArchived(c, a, src.column, cutoff);
      lastRuns.set(runKey(p), { cutoff, rows: 0, archiveBefore });
      const q = (s: string): string => c.escapeIdentifier(s);
      const text = sql.archiveOldBatch(q(src.schema), q(src.table), q(src.column), q(a.schema), q(a.table), a.returned.map(q), a.inserted.map(q));
      const loop = await batchLoop(
        { pauseMs: e.pauseMs, maxBatches: p.max_batches, maxSeconds: p.max_seconds, verb: 'moved' },
        signal,
        async () => {
          await c.query(sql.BEGIN);
          let open = true;
          try {
            const r = (await c.query<{ moved: number; archived: number }>(text, [cutoff, e.batchSize])).rows[0];
            const moved = num(r?.moved) ?? 0;
            const archived = num(r?.archived) ?? 0;
            if (moved !== archived) {
              // A trigger on the archive dropped rows: never delete what was not archived.
              await c.query(sql.ROLLBACK);
              open = false;
              throw new Error(`${path(p)}: the archive took ${archived} of ${moved} rows (a trigger on it?); batch rolled back`);
            }
            await c.query(sql.COMMIT);
            open = false;
            return moved;
          } finally {
            // On abort the connection is dropped, which rolls the transaction back on the server.
            if (open && !signal.aborted) await c.query(sql.ROLLBACK);
          }
        },
      );
      lastRuns.set(runKey(p), { cutoff, rows: loop.rows, archiveBefore });
      return {
        summary:
          `moved ${loop.rows} rows of ${display(src.schema, src.table)} older than ${cutoff} to ${display(a.schema, a.table)}` +
          `${created ? ' (created LIKE the source)' : ''} in ${loop.batches} batches` +
          (loop.stoppedBy ? `; stopped by ${loop.stoppedBy}, the rest waits for the next run` : ''),
        details: {
          schema: src.schema,
          table: src.table,
          archive_schema: a.schema,
          archive_table: a.table,
          archive_created: created,
          cutoff,
          rows: loop.rows,
          batches: loop.batches,
          stopped_by: loop.stoppedBy ?? null,
        },
      };
    });
  },

  async verify(ctx, p) {
    const e = entry(ctx, p);
    return pgTarget(ctx, e.postgres).use(checkSignal(), async (c) => {
      const src = await sourceTable(c, e, path(p), ACTION);
      const last = lastRuns.get(runKey(p));
      const cutoff = last?.cutoff ?? (await cutoffOf(c, e.olderThanMs));
      const left = await countOlder(c, src, cutoff);
      const from = display(src.schema, src.table);
      const problems: string[] = [];
      const facts: string[] = [];
      if (left > 0) problems.push(`${atLeast(left)} rows of ${from} older than ${cutoff} remain`);
      else facts.push(`no rows of ${from} older than ${cutoff} remain`);
      const [arc] = await lookUp(c, e.archiveSchema ?? src.schema, e.archiveTable, undefined);
      if (last?.archiveBefore !== undefined) {
        if (!arc) problems.push(`archive table ${display(e.archiveSchema ?? src.schema, e.archiveTable)} is gone`);
        else {
          const gained = (await countArchived(c, arc, src.column, cutoff)) - last.archiveBefore;
          const text = `${display(arc.schema, arc.table)} gained ${gained} rows older than the cutoff (the run moved ${last.rows})`;
          (gained >= last.rows ? facts : problems).push(text);
        }
      }
      return { fixed: problems.length === 0, detail: [...problems, ...facts].join('; ') };
    });
  },
});
