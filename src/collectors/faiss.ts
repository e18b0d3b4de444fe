import { stat, readFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import type { Config, FaissIndexConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { MetricFactory } from '../metrics/registry.ts';
import type { PgTarget } from '../targets/postgres.ts';
import { runCheck, stopChecks, type CheckOutcome } from '../faiss/checker.ts';
import { parseSidecar, sidecarPath, type MaintenanceAction } from '../faiss/sidecar.ts';
import { RESOLVE_SOURCE, sourceRowCount, VECTOR_TYPES, type ResolvedSource } from '../sql/faiss.ts';
import { defineCollector } from './collector.ts';

// FAISS vector indexes. A scrape reports the latest stat of the index file (and of its
// maintenance sidecar) and the last check's result, and waits for neither. The check (load,
// probe searches, recall against exact search) runs in a child process (src/faiss/checker.ts
// says why not a worker thread), at most every check_interval, or sooner when the file's
// identity (device, inode, size, mtime) changes. The source table's rows are counted with
// each check, not per scrape.
//
// Stats and checks are started by scrapes, not by timers: nothing runs in a service nobody
// scrapes, no timer outlives a closed service, and checks still keep their own interval
// however often Prometheus scrapes. close() (at shutdown) kills a check in progress.

function declare(f: MetricFactory) {
  const g = f.gauge.bind(f);
  return {
    fileSize: g('faiss_index_file_size_bytes', 'Size of the index file (absent when the file is missing), as of the previous scrape\'s stat.'),
    fileMtime: g('faiss_index_file_modified_timestamp_seconds', 'Last modification of the index file, seconds since epoch, as of the previous scrape\'s stat.'),
    loadable: g(
      'faiss_index_loadable',
      'Whether FAISS loads the index file (1) or not (0: missing, truncated, corrupt, or FAISS crashed reading it), as of the last check.',
    ),
    info: g('faiss_index_info', 'The index type (FAISS class) and metric, as of the last check (value 1).', ['type', 'metric']),
    vectors: g('faiss_index_vectors', 'Vectors in the index (ntotal), as of the last check.'),
    dimension: g('faiss_index_dimension', 'Dimension of the indexed vectors.'),
    trained: g('faiss_index_trained', 'Whether the index is trained (1) or not (0).'),
    ivfLists: g('faiss_index_ivf_lists', 'IVF indexes: inverted lists (nlist).'),
    ivfProbes: g('faiss_index_ivf_probes', 'IVF indexes: lists searched per query (nprobe) as stored in the file; the checks search with it.'),
    recall: g(
      'faiss_index_recall_at_10',
      'Recall@10 of the index against exact search, over a sample of its own stored vectors (recall@ntotal below 10 vectors); absent for types whose vectors cannot be read.',
    ),
    recallQueries: g('faiss_index_recall_queries', 'Queries (own vectors) behind faiss_index_recall_at_10.'),
    recallFloor: g('faiss_index_recall_floor', 'Configured recall_floor: the recall below which the index needs attention.'),
    probeLatency: g('faiss_index_probe_latency_seconds', 'Median latency of a single-query 10-NN search in the last check.'),
    checkTime: g('faiss_index_check_timestamp_seconds', 'When the last check finished, seconds since epoch.'),
    checkDuration: g('faiss_index_check_duration_seconds', 'How long the last check took (load, probes, recall, source count).'),
    checkSuccess: g(
      'faiss_index_check_success',
      'Whether the last check ran to its end (1) or not (0: the check process crashed or timed out). A file that does not load is a completed check.',
    ),
    checkRunning: g('faiss_index_check_running', 'Whether a check of this index is in progress or waiting for another index\'s check to end (1) or not (0).'),
    sourceRows: g('faiss_index_source_rows', 'Rows of the source table with a non-null vector, as of the last check.'),
    sourceGap: g(
      'faiss_index_source_gap',
      'Source rows minus vectors in the index: positive means rows missing from the index, negative means vectors whose rows are gone.',
    ),
    sourceSuccess: g('faiss_index_source_check_success', 'Whether the last count of the source table succeeded (1) or not (0).'),
    maintenance: g(
      'faiss_index_last_maintenance_timestamp_seconds',
      'When housekeeper last did this maintenance action to the index (rebuild, retrain, optimize), from its sidecar file, seconds since epoch.',
      ['action'],
    ),
  };
}
type Metrics = ReturnType<typeof declare>;

/** Shortest time between two checks of the same index, whatever triggers them. */
const MIN_CHECK_GAP_MS = 2_000;
/** A check is killed after max(this, check_interval). */
const MIN_CHECK_TIMEOUT_MS = 120_000;

interface SourceOutcome {
  ok: boolean;
  rows: number | undefined;
  problem: string | undefined;
}

interface Sidecar {
  identity: string;
  actions: Map<MaintenanceAction, number>;
}

/** What the latest stat of the index file saw. */
interface Seen {
  file: Stats | undefined;
  /** dev:ino:size:mtime, or "missing". */
  identity: string;
  /** A stat error other than "missing". */
  error: Error | undefined;
}

function identityOf(s: Stats | undefined): string {
  return s === undefined ? 'missing' : `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
}

async function statOrMissing(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Counts the source table's rows that have a vector, after checking every name against the catalog. */
async function countSource(pg: PgTarget, src: NonNullable<FaissIndexConfig['source']>, signal: AbortSignal): Promise<number> {
  return pg.use(signal, async (client) => {
    const r = await client.query<ResolvedSource>(RESOLVE_SOURCE, [src.table, src.idColumn, src.vectorColumn]);
    const row = r.rows[0];
    if (!row) throw new Error(`source table "${src.table}" not found`);
    if (row.id_column === null) throw new Error(`source table ${row.schema_name}.${row.table_name} has no column "${src.idColumn}"`);
    if (row.vector_column === null) throw new Error(`source table ${row.schema_name}.${row.table_name} has no column "${src.vectorColumn}"`);
    if (!VECTOR_TYPES.includes(row.vector_type ?? '')) {
      throw new Error(`source column ${row.table_name}.${row.vector_column} is ${row.vector_type}, expected ${VECTOR_TYPES.join(' or ')}`);
    }
    const q = (name: string): string => client.escapeIdentifier(name);
    const count = await client.query<{ rows: number }>(sourceRowCount(q, { schema: row.schema_name, table: row.table_name, vectorColumn: row.vector_column }));
    return Number(count.rows[0]?.rows ?? 0);
  });
}

/** One configured index: what the last check found, and when the next one is due. */
export class FaissIndexWatch {
  readonly name: string;
  readonly config: FaissIndexConfig;
  private readonly source: PgTarget | undefined;
  private readonly sourceTimeoutMs: number;
  private last: CheckOutcome | undefined;
  private lastSource: SourceOutcome | undefined;
  private checkedIdentity: string | undefined;
  private lastStart: number | undefined;
  private running: Promise<void> | undefined;
  private sidecar: Sidecar | undefined;
  private sidecarProblem: string | undefined;
  private seen: Seen | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(config: FaissIndexConfig, source: PgTarget | undefined, sourceTimeoutMs: number) {
    this.name = config.name;
    this.config = config;
    this.source = source;
    this.sourceTimeoutMs = sourceTimeoutMs;
  }

  /**
   * Per scrape, and cheap: returns what the latest stat of the file saw and starts the next
   * stat in the background (one at a time). Only the first scrape waits for a stat. So a
   * scrape never waits for libuv's thread pool, which on a busy host can take milliseconds
   * to get a CPU, nor for a hung network filesystem; the file facts are at most one scrape
   * old, and a change is acted on as soon as the background stat sees it.
   */
  async observe(log: Logger): Promise<Seen> {
    const refresh = this.refresh(log);
    if (this.seen === undefined) await refresh;
    const seen = this.seen as Seen | undefined;
    if (seen === undefined) throw new Error('index file not stat()ed yet');
    if (seen.error) throw seen.error;
    return seen;
  }

  private refresh(log: Logger): Promise<void> {
    this.refreshing ??= this.statNow(log).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Stats the index and its sidecar (at once), rereads a changed sidecar, starts a due check. */
  private async statNow(log: Logger): Promise<void> {
    const sidecar = sidecarPath(this.config.path);
    let file: Stats | undefined;
    let sidecarStat: Stats | undefined;
    try {
      [file, sidecarStat] = await Promise.all([statOrMissing(this.config.path), statOrMissing(sidecar)]);
    } catch (err) {
      // Not "missing" (EACCES, EIO, ...): the scrape reports this target's collection failed.
      this.seen = { file: undefined, identity: 'error', error: err as Error };
      return;
    }
    const identity = identityOf(file);
    this.seen = { file, identity, error: undefined };
    const now = performance.now();
    const since = this.lastStart === undefined ? Infinity : now - this.lastStart;
    const changed = identity !== this.checkedIdentity;
    const due = since >= this.config.checkIntervalMs || (changed && since >= Math.min(MIN_CHECK_GAP_MS, this.config.checkIntervalMs));
    if (this.running === undefined && due) {
      this.lastStart = now;
      this.running = this.check(identity, log).finally(() => {
        this.running = undefined;
      });
    }
    await this.readSidecar(sidecar, sidecarStat, log);
  }

  private async check(identity: string, log: Logger): Promise<void> {
    const where = { collector: 'faiss', target: this.name };
    const started = Date.now();
    const checkFile: Promise<CheckOutcome> =
      identity === 'missing'
        ? Promise.resolve({
            startedAt: started,
            finishedAt: started,
            durationSeconds: 0,
            completed: true,
            facts: { loadable: false, error: 'file not found' },
            loadable: false,
            problem: 'file not found',
          })
        : runCheck({
            path: this.config.path,
            recallSample: this.config.recallSample,
            timeoutMs: Math.max(MIN_CHECK_TIMEOUT_MS, this.config.checkIntervalMs),
          });
    const checkSource: Promise<SourceOutcome | undefined> = this.source
      ? countSource(this.source, this.config.source as NonNullable<FaissIndexConfig['source']>, AbortSignal.timeout(this.sourceTimeoutMs)).then(
          (rows) => ({ ok: true, rows, problem: undefined }),
          (err: unknown) => ({ ok: false, rows: undefined, problem: (err as Error).message }),
        )
      : Promise.resolve(undefined);
    const [outcome, source] = await Promise.all([checkFile, checkSource]);
    // Shutdown stopped it: nothing learnt, nothing recorded. It is not retried at once either
    // (the service is stopping): a later check comes when the interval or the file says so.
    if (outcome.cancelled) return;
    // Log transitions, not every check: the metrics say it on every scrape.
    const before = this.last;
    if (outcome.loadable === false && before?.loadable !== false) log.warn({ ...where, problem: outcome.problem }, 'FAISS index does not load');
    else if (outcome.loadable === true && before?.loadable === false) log.info(where, 'FAISS index loads again');
    if (!outcome.completed && (before === undefined || before.completed)) log.warn({ ...where, problem: outcome.problem }, 'FAISS index check failed');
    if (outcome.facts?.recallSkipped && before?.facts?.recallSkipped !== outcome.facts.recallSkipped) {
      log.info({ ...where, reason: outcome.facts.recallSkipped }, 'FAISS recall not measured');
    }
    if (source && !source.ok && (this.lastSource?.ok ?? true)) log.warn({ ...where, problem: source.problem }, 'FAISS source table count failed');
    log.debug({ ...where, seconds: outcome.durationSeconds, facts: outcome.facts }, 'FAISS index checked');
    this.last = { ...outcome, finishedAt: Date.now(), durationSeconds: (Date.now() - started) / 1000 };
    this.lastSource = source;
    this.checkedIdentity = identity;
  }

  /** Reads the maintenance sidecar when it appeared or changed (small; cached by identity). */
  private async readSidecar(path: string, s: Stats | undefined, log: Logger): Promise<void> {
    const identity = identityOf(s);
    if (this.sidecar?.identity === identity || (this.sidecar === undefined && this.sidecarProblem === identity)) return;
    if (s === undefined) {
      this.sidecar = { identity, actions: new Map() };
      return;
    }
    try {
      const actions = parseSidecar(await readFile(path, 'utf8'));
      this.sidecar = { identity, actions };
      this.sidecarProblem = undefined;
    } catch (err) {
      this.sidecar = undefined;
      this.sidecarProblem = identity;
      log.warn({ collector: 'faiss', target: this.name, file: path, problem: (err as Error).message }, 'FAISS maintenance sidecar ignored: invalid');
    }
  }

  /** The last check's result and what the scrape saw, as metrics. */
  report(set: (metric: Metrics[keyof Metrics], labels: Record<string, string>, value: number) => void, m: Metrics, file: Stats | undefined, identity: string): void {
    set(m.recallFloor, {}, this.config.recallFloor);
    set(m.checkRunning, {}, this.running === undefined ? 0 : 1);
    if (file) {
      set(m.fileSize, {}, file.size);
      set(m.fileMtime, {}, file.mtimeMs / 1000);
    }
    for (const [action, at] of this.sidecar?.actions ?? []) set(m.maintenance, { action }, at);
    const last = this.last;
    if (last !== undefined) {
      set(m.checkTime, {}, last.finishedAt / 1000);
      set(m.checkDuration, {}, last.durationSeconds);
      set(m.checkSuccess, {}, last.completed ? 1 : 0);
    }
    // A file missing now is not loadable now, whatever the last check saw.
    if (identity === 'missing') {
      set(m.loadable, {}, 0);
    } else if (last?.loadable !== undefined) {
      set(m.loadable, {}, last.loadable ? 1 : 0);
    }
    const facts = last?.facts;
    if (identity !== 'missing' && facts?.loadable) {
      if (facts.type !== undefined) set(m.info, { type: facts.type, metric: facts.metric ?? 'other' }, 1);
      if (facts.vectors !== undefined) set(m.vectors, {}, facts.vectors);
      if (facts.dimension !== undefined) set(m.dimension, {}, facts.dimension);
      if (facts.trained !== undefined) set(m.trained, {}, facts.trained ? 1 : 0);
      if (facts.ivf) {
        set(m.ivfLists, {}, facts.ivf.nlist);
        set(m.ivfProbes, {}, facts.ivf.nprobe);
      }
      if (facts.recall) {
        set(m.recall, {}, facts.recall.value);
        set(m.recallQueries, {}, facts.recall.queries);
      }
      if (facts.probe) set(m.probeLatency, {}, facts.probe.medianSeconds);
    }
    const source = this.lastSource;
    if (source) {
      set(m.sourceSuccess, {}, source.ok ? 1 : 0);
      if (source.rows !== undefined) {
        set(m.sourceRows, {}, source.rows);
        // The gap needs both counts; a file that is missing or does not load has no vectors to compare.
        const vectors = identity !== 'missing' && facts?.loadable ? facts.vectors : undefined;
        if (vectors !== undefined) set(m.sourceGap, {}, source.rows - vectors);
      }
    }
  }
}

export default defineCollector<FaissIndexWatch, Metrics>({
  name: 'faiss',
  enabledByDefault: true,
  targets: (t, config: Config) =>
    config.faiss.map((c) => {
      const pg = c.source === undefined ? undefined : t.postgres.find((p) => p.name === c.source?.target);
      return new FaissIndexWatch(c, pg, config.server.scrapeTimeoutMs);
    }),
  metrics: declare,
  // Shutdown: kill the check in progress rather than let it finish for no one.
  close: () => stopChecks(),
  async collect(ctx, m) {
    const { file, identity } = await ctx.target.observe(ctx.log);
    ctx.target.report(ctx.set, m, file, identity);
  },
});
