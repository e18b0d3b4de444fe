import { Type } from '@sinclair/typebox';
import type pg from 'pg';
import type { ArchiveConfig, CleanupConfig, Config } from '../config.ts';
import * as sql from '../sql/cleanup.ts';
import type { ActionContext } from './action.ts';
import { sleep } from './support.ts';
import { num, str } from '../util/values.ts';

// What cleanup-old-rows and archive-old-rows share: the config entry a param names, the
// catalog check of its table and time column (src/retention/table.ts, which the retention
// collector uses too), the run's cutoff and its bounded batch loop.

type Section = 'cleanup' | 'archive';
interface EntryConfig {
  cleanup: CleanupConfig;
  archive: ArchiveConfig;
}

/** Params shared by both actions. The entry is config; nothing from an alert becomes SQL. */
export const commonParams = (section: Section) => ({
  entry: Type.String({ pattern: '^[A-Za-z0-9_.-]+$', maxLength: 100, description: `name of an actions.${section} entry in config` }),
  max_batches: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'stop after this many batches (the rest waits for the next run); default: no limit' }),
  ),
  max_seconds: Type.Integer({
      minimum: 1,
      maximum: 3600,
      default: 600,
      description: 'stop starting batches after this long (the engine aborts a run at 15 min); the rest waits for the next run',
    }),
  timeout_seconds: Type.Integer({ minimum: 1, maximum: 3600, default: 300, description: 'statement_timeout of one batch' }),
});


/** How many old rows plan and verify count at most: the scan stays bounded on a huge backlog. */
const COUNT_CAP = 1_000_000;

function entryOf<C extends CleanupConfig>(section: Section, entries: Record<string, C>, name: string): C {
  const e = Object.hasOwn(entries, name) ? entries[name] : undefined;
  if (!e) {
    const known = Object.keys(entries);
    throw new Error(`no entry named "${name}" in config actions.${section} (known: ${known.length ? known.join(', ') : 'none'})`);
  }
  return e;
}

export { display, lookUp, sourceTable, type Relation } from '../retention/table.ts';

/** The run's cutoff (ISO-8601 UTC text, microseconds): the database's now() minus older_than. */
export async function cutoffOf(c: pg.ClientBase, olderThanMs: number): Promise<string> {
  const res = await c.query<{ cutoff: string }>(sql.CUTOFF, [olderThanMs / 1000]);
  return str(res.rows[0]?.cutoff);
}

export async function countOlder(c: pg.ClientBase, t: { schema: string; table: string; column: string }, cutoff: string, cap = COUNT_CAP): Promise<number> {
  const text = sql.countOlder(c.escapeIdentifier(t.schema), c.escapeIdentifier(t.table), c.escapeIdentifier(t.column));
  return num((await c.query<{ n: string }>(text, [cutoff, cap])).rows[0]?.n) ?? 0;
}

/** 90d, 36h, 90m: an age as config would write it. */
export function ageText(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms / 1000}s`;
}

export const atLeast = (n: number, cap = COUNT_CAP): string => (n >= cap ? `at least ${n}` : String(n));

export interface ForeignKeyIn {
  name: string;
  schema: string;
  table: string;
  on_delete: 'no action' | 'restrict' | 'cascade' | 'set null' | 'set default';
}

/** A key that changes or deletes other rows when a row here is deleted (not NO ACTION / RESTRICT, which only refuse). */
export const firesOnDelete = (k: ForeignKeyIn): boolean => k.on_delete !== 'no action' && k.on_delete !== 'restrict';

const ON_DELETE: Record<string, ForeignKeyIn['on_delete']> = { a: 'no action', r: 'restrict', c: 'cascade', n: 'set null', d: 'set default' };

/** Foreign keys of other tables that point at this one: deleting its rows fires them. */
export async function referencingKeys(c: pg.ClientBase, oid: string): Promise<ForeignKeyIn[]> {
  const res = await c.query<Record<string, unknown>>(sql.REFERENCING_FOREIGN_KEYS, [oid]);
  return res.rows.map((r) => ({ name: str(r['name']), schema: str(r['schema']), table: str(r['table']), on_delete: ON_DELETE[str(r['on_delete'])] ?? 'no action' }));
}

export interface LoopResult {
  batches: number;
  rows: number;
  /** Why the loop ended before the old rows ran out; undefined when they did. */
  stoppedBy: 'max_batches' | 'max_seconds' | undefined;
}

/**
 * Runs batches until one finds nothing, max_batches is reached or max_seconds has passed,
 * pausing between batches. The signal is honoured between batches and during the pause;
 * a batch in flight is one transaction, so an abort (which drops the connection) either
 * commits it whole or not at all. On abort it throws an error that says what was done.
 */
export async function batchLoop(
  opts: { pauseMs: number; maxBatches: number | undefined; maxSeconds: number; verb: string },
  signal: AbortSignal,
  batch: () => Promise<number>,
): Promise<LoopResult> {
  const started = performance.now();
  const r: LoopResult = { batches: 0, rows: 0, stoppedBy: undefined };
  const aborted = (): Error => {
    const why = signal.reason instanceof Error ? signal.reason.message : 'aborted';
    return new Error(`${why}: stopped after ${r.batches} batches, ${r.rows} rows ${opts.verb} (each batch is one transaction: committed whole or not at all)`);
  };
  const cap = Math.min(opts.maxBatches ?? Number.MAX_SAFE_INTEGER, 1_000_000);
  for (;;) {
    if (signal.aborted) throw aborted();
    let n: number;
    try {
      n = await batch();
    } catch (err) {
      if (signal.aborted) throw aborted();
      throw err;
    }
    if (n === 0) break;
    r.batches++;
    r.rows += n;
    if (r.batches >= cap) {
      r.stoppedBy = 'max_batches';
      break;
    }
    if (performance.now() - started >= opts.maxSeconds * 1000) {
      r.stoppedBy = 'max_seconds';
      break;
    }
    if (opts.pauseMs > 0) {
      try {
        await sleep(opts.pauseMs, signal);
      } catch {
        throw aborted();
      }
    }
  }
  return r;
}

/**
 * The cutoff each entry's last run used, for verify (which gets no result from run): rows
 * that aged past the line between run and verify are the next run's, not a failure. Kept in
 * memory: the engine verifies in the process that ran. Without one, verify uses now().
 */
export const lastRuns = new Map<string, { cutoff: string; rows: number; archiveBefore?: number }>();

/**
 * The per-entry names an action of `section` uses, from the entry param: its config entry,
 * where that is in config (for errors), the engine's target key (the Postgres server its
 * tables live on, so one action at a time runs per server; without the config, the entry
 * itself) and the key its last run is remembered under in lastRuns.
 */
export function perEntry<S extends Section>(section: S) {
  return {
    entry: (ctx: ActionContext, p: { entry: string }): EntryConfig[S] => {
      const sections: { [K in Section]: Record<string, EntryConfig[K]> } = ctx.config.actions;
      return entryOf(section, sections[section], p.entry);
    },
    path: (p: { entry: string }): string => `actions.${section}.${p.entry}`,
    targetKey: (p: { entry: string }, config?: Config): string => {
      const server = config?.actions[section][p.entry]?.postgres;
      return server === undefined ? `${section}:${p.entry}` : `postgres:${server}`;
    },
    runKey: (p: { entry: string }): string => `${section}:${p.entry}`,
  };
}
