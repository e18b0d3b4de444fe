import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, stat, statfs } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { FaissIndexConfig } from '../config.ts';
import { runCheck } from '../faiss/checker.ts';
import { nlistOf, readIndexHead, type IndexHead } from '../faiss/factory.ts';
import { fileSha256, idsMatch, idsPath, prevPath } from '../faiss/ids.ts';
import type { BuildJob, BuildStats } from '../faiss/rebuild-protocol.ts';
import { publishGeneration, reconcileIds, removeFiles, removeLeftovers, runBuild, tempFiles } from '../faiss/rebuild.ts';
import { recordMaintenance, type MaintenanceAction, type MaintenanceRecord } from '../faiss/sidecar.ts';
import { ID_TYPES, REBUILD_VECTOR_TYPES, RESOLVE_REBUILD_SOURCE, type RebuildSource, type RebuildSourceRow } from '../sql/faiss-rebuild.ts';
import type { ActionContext, Verification } from './action.ts';
import { bytes } from './backup-support.ts';
import { pgTarget, TargetName } from './support.ts';

// What the FAISS maintenance actions (faiss-rebuild, faiss-retrain, faiss-restore,
// faiss-optimize) share: params, the live index's facts, the source table, one
// build-and-publish, the sidecar record after a publish, verify.

export const IndexName = TargetName('the FAISS index (config faiss[].name)');
export const Factory = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: '^[A-Za-z0-9_,.=]+$',
  description: 'FAISS index_factory descriptor, e.g. "IVF1024,Flat", "Flat", "HNSW32"',
});
export const Metric = Type.Union([Type.Literal('l2'), Type.Literal('inner_product')], { description: 'distance: l2 or inner_product' });
export const TrainSize = Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'vectors to train on, a uniform sample of the rows (default max(20000, 64 × nlist))' });
export const BatchSize = Type.Integer({ minimum: 100, maximum: 100_000, description: 'rows per FETCH and per add() (default about 256k floats per batch: 2000 rows of 128)' });
export const MaxSkipped = Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0, description: 'rows with an unusable vector that may be left out (0: any fails the build)' });

/** The FAISS actions change the same files: the engine runs one at a time per index. */
export const faissTargetKey = (p: { index: string }): string => `faiss:${p.index}`;

export function faissConfig(ctx: ActionContext, name: string): FaissIndexConfig {
  const f = ctx.config.faiss.find((x) => x.name === name);
  if (!f) throw new Error(`no faiss index named "${name}" in config`);
  return f;
}

/** The live index's header, or why it cannot be read (missing, not a FAISS file). */
export async function liveHead(path: string): Promise<{ head: IndexHead | undefined; problem: string | undefined }> {
  try {
    return { head: await readIndexHead(path), problem: undefined };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { head: undefined, problem: code === 'ENOENT' ? 'missing' : (code ?? (err as Error).message) };
  }
}

/** The source table, resolved and checked against the catalog, and how the child connects. */
export interface ResolvedSource {
  target: string;
  url: string;
  source: RebuildSource;
  /** "schema.table (id, vector)" for people. */
  label: string;
}

export async function resolveSource(ctx: ActionContext, cfg: FaissIndexConfig, signal: AbortSignal): Promise<ResolvedSource> {
  const src = cfg.source;
  if (!src) throw new Error(`faiss index "${cfg.name}" has no source table in config (faiss[].source): nothing to rebuild from`);
  const target = pgTarget(ctx, src.target);
  const url = target.url;
  const row = await target.use(signal, async (c) => (await c.query<RebuildSourceRow>(RESOLVE_REBUILD_SOURCE, [src.table, src.idColumn, src.vectorColumn])).rows[0]);
  if (!row) throw new Error(`source table "${src.table}" not found on "${src.target}"`);
  const where = `${row.schema_name}.${row.table_name}`;
  if (row.id_column === null) throw new Error(`source table ${where} has no column "${src.idColumn}"`);
  if (row.vector_column === null) throw new Error(`source table ${where} has no column "${src.vectorColumn}"`);
  if (!ID_TYPES.includes(row.id_type ?? '')) throw new Error(`id column ${where}.${row.id_column} is ${row.id_type}; the id map holds ${ID_TYPES.join(', ')}`);
  if (!REBUILD_VECTOR_TYPES.includes(row.vector_type ?? '')) {
    throw new Error(`vector column ${where}.${row.vector_column} is ${row.vector_type}, expected ${REBUILD_VECTOR_TYPES.join(' or ')}`);
  }
  return {
    target: src.target,
    url,
    source: { schema: row.schema_name, table: row.table_name, idColumn: row.id_column, vectorColumn: row.vector_column, castToReal: row.vector_type !== 'real[]' },
    label: `${where} (${row.id_column}, ${row.vector_column}) on "${src.target}"`,
  };
}

export interface BuildSettings {
  factory: string;
  factoryFrom: 'params' | 'live index' | 'config';
  metric: 'l2' | 'inner_product';
  trainSize: number;
  batchSize: number;
  nprobe: number;
  maxSkipped: number;
}

export interface BuildParams {
  factory?: string | undefined;
  metric?: 'l2' | 'inner_product' | undefined;
  train_size?: number | undefined;
  batch_size?: number | undefined;
  nprobe?: number | undefined;
  max_skipped_rows?: number | undefined;
}

/** Params first, then the live index, then config: what the build will make. */
export function buildSettings(cfg: FaissIndexConfig, p: BuildParams, head: IndexHead | undefined): BuildSettings {
  const fromLive = head?.factory;
  const factory = p.factory ?? fromLive ?? cfg.factory;
  if (factory === undefined) {
    throw new Error(
      `no index type for "${cfg.name}": give the factory param or faiss[].factory in config ` +
        `(${head ? `the live index is ${head.type}, which cannot be named from its file` : 'the live index cannot be read'})`,
    );
  }
  const liveMetric = head?.metric === 'l2' || head?.metric === 'inner_product' ? head.metric : undefined;
  const nlist = nlistOf(factory);
  // Keep the live nprobe when the lists are the same; the build raises it if recall needs it.
  const nprobe = p.nprobe ?? (head?.ivf && head.ivf.nlist === nlist ? Math.max(1, head.ivf.nprobe) : 1);
  return {
    factory,
    factoryFrom: p.factory !== undefined ? 'params' : fromLive !== undefined ? 'live index' : 'config',
    metric: p.metric ?? liveMetric ?? cfg.metric ?? 'l2',
    trainSize: p.train_size ?? Math.max(20_000, 64 * (nlist ?? 0)),
    batchSize: p.batch_size ?? 0, // 0: chosen from the dimension by the build
    nprobe,
    maxSkipped: p.max_skipped_rows ?? 0,
  };
}

/**
 * Rows per batch: about 256k floats (2000 rows of 128). faiss-node boxes every element of a
 * number[] batch while it copies it (about 32 bytes each, alive until add() returns), so the
 * batch bounds that memory; FAISS's add is as fast at 2000 rows as at 10000 (bench/README.md).
 */
function batchFor(settings: BuildSettings, dimension: number | undefined): number {
  if (settings.batchSize > 0) return settings.batchSize;
  return Math.max(100, Math.min(10_000, Math.floor(262_144 / Math.max(1, dimension ?? 128))));
}

export function describeSettings(s: BuildSettings, needsTraining: boolean): string {
  const train = needsTraining ? `train on a sample of ${s.trainSize} rows, ` : '';
  return `${s.factory} (${s.metric}; type from ${s.factoryFrom}): ${train}add in batches`;
}

/** The directory takes a new generation: writable, and room for it (about twice the live file). */
export async function checkDirectory(path: string): Promise<void> {
  const dir = dirname(path);
  await access(dir, constants.W_OK).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot write in ${dir}: ${err.code ?? err.message}`);
  });
  const live = await stat(path).catch(() => undefined);
  if (!live) return;
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  const need = Math.ceil(live.size * 2.2);
  if (free < need) throw new Error(`only ${bytes(free)} free in ${dir}; a new generation of a ${bytes(live.size)} index needs about ${bytes(need)}`);
}

/** What a publish left, for verify() right after run() in the same process. */
export interface Published {
  at: number;
  vectors: number;
  sha256: string;
  ids: boolean;
  /** The recall the build measured (also the fallback when the checker cannot measure this type). */
  recall: number | undefined;
}
export const lastPublished = new Map<string, Published>();

export interface BuildOutcome {
  stats: BuildStats;
  settings: BuildSettings;
  source: ResolvedSource;
  previousKept: boolean;
  leftoversRemoved: string[];
  reconciled: string | undefined;
}

/**
 * Builds a new generation from the source table in a child process and publishes it (see
 * src/faiss/rebuild.ts), then records `action` in the sidecar. A failure or abort before the
 * publish removes the temporary files and leaves the live index and its map as they were.
 */
export async function buildAndPublish(
  ctx: ActionContext,
  cfg: FaissIndexConfig,
  settings: BuildSettings,
  action: 'rebuild' | 'retrain',
  signal: AbortSignal,
  head: IndexHead | undefined,
): Promise<BuildOutcome> {
  const started = Date.now();
  const reconciled = await reconcileIds(cfg.path);
  if (reconciled) ctx.log.warn({ action: `faiss-${action}`, index: cfg.name, repaired: reconciled }, 'FAISS id map repaired');
  const leftoversRemoved = await removeLeftovers(cfg.path);
  await checkDirectory(cfg.path);
  const source = await resolveSource(ctx, cfg, signal);
  const files = tempFiles(cfg.path);
  const liveMode = (await stat(cfg.path).catch(() => undefined))?.mode;
  const job: BuildJob = {
    url: source.url,
    source: source.source,
    factory: settings.factory,
    metric: settings.metric,
    trainSize: settings.trainSize,
    batchSize: batchFor(settings, head?.dimension),
    nprobe: settings.nprobe,
    recallSample: cfg.recallSample,
    recallFloor: cfg.recallFloor,
    maxSkipped: settings.maxSkipped,
    seed: randomBytes(4).readUInt32LE(0),
    mode: liveMode === undefined ? 0o644 : liveMode & 0o777,
    files,
  };
  let stats: BuildStats;
  let previousKept: boolean;
  try {
    stats = await runBuild(cfg.path, job, signal);
    // The last moment an abort is heard: the publish below is a few renames and runs to its end.
    signal.throwIfAborted();
    ({ previousKept } = await publishGeneration(cfg.path, { index: files.index, ids: files.ids }));
  } finally {
    await removeFiles([files.index, files.ids, files.vectors]);
  }
  await recordPublished(
    cfg,
    action,
    {
      vectors: stats.rows,
      dimension: stats.dimension,
      file_size_bytes: stats.indexBytes,
      duration_seconds: (Date.now() - started) / 1000,
      // Beyond the sidecar's fields (readers ignore unknown ones): what the build verified.
      recall_at_10: stats.recall,
      factory: settings.factory,
      ...(stats.nprobe !== undefined ? { nprobe: stats.nprobe } : {}),
      ids_file: basename(idsPath(cfg.path)),
    },
    { vectors: stats.rows, sha256: stats.indexSha256, ids: true, recall: stats.recall },
  );
  return { stats, settings, source, previousKept, leftoversRemoved, reconciled };
}

/**
 * After a publish: records `action` in the sidecar (now, with `record`'s fields) and keeps
 * what was published for verify() in this process.
 */
export async function recordPublished(
  cfg: FaissIndexConfig,
  action: MaintenanceAction,
  record: Omit<MaintenanceRecord, 'at'> & Record<string, unknown>,
  published: Omit<Published, 'at'>,
): Promise<void> {
  const at = new Date();
  await recordMaintenance(cfg.path, action, { at: at.toISOString(), ...record });
  lastPublished.set(cfg.name, { at: at.getTime(), ...published });
}

export function outcomeDetails(o: BuildOutcome, cfg: FaissIndexConfig): Record<string, unknown> {
  const s = o.stats;
  return {
    index: cfg.name,
    path: cfg.path,
    source: o.source.label,
    factory: o.settings.factory,
    factory_from: o.settings.factoryFrom,
    metric: o.settings.metric,
    vectors: s.rows,
    dimension: s.dimension,
    skipped_rows: s.skipped,
    ...(s.skipped > 0 ? { skipped_ids: s.skippedIds } : {}),
    trained: s.trained,
    train_vectors: s.trainVectors,
    nlist: s.nlist ?? null,
    nprobe: s.nprobe ?? null,
    ...(s.nprobeRequested !== undefined ? { nprobe_raised_from: s.nprobeRequested } : {}),
    recall_at_10: s.recall,
    recall_queries: s.recallQueries,
    recall_floor: cfg.recallFloor,
    file_size_bytes: s.indexBytes,
    sha256: s.indexSha256,
    ids_file: idsPath(cfg.path),
    previous_kept: o.previousKept ? prevPath(cfg.path) : null,
    seconds: s.seconds,
    child_peak_rss_bytes: s.peakRssBytes ?? null,
    peak_rss_by_phase: s.peakRssByPhase,
    leftovers_removed: o.leftoversRemoved,
    ...(o.reconciled ? { repaired: o.reconciled } : {}),
  };
}

export function outcomeLine(verb: string, o: BuildOutcome, cfg: FaissIndexConfig): string {
  const s = o.stats;
  const nprobe = s.nprobe !== undefined ? `, nprobe ${s.nprobe}${s.nprobeRequested !== undefined ? ` (raised from ${s.nprobeRequested})` : ''}` : '';
  const skipped = s.skipped > 0 ? `, ${s.skipped} rows skipped` : '';
  return (
    `${verb} FAISS index "${cfg.name}" as ${o.settings.factory} from ${o.source.label}: ${s.rows} vectors × ${s.dimension}${skipped}, ` +
    `recall@${s.k} ${s.recall.toFixed(3)} (floor ${cfg.recallFloor})${nprobe}, ${bytes(s.indexBytes)} in ${s.seconds.total.toFixed(1)} s; ` +
    `${o.previousKept ? `previous kept as ${basename(prevPath(cfg.path))}` : 'no previous index'}`
  );
}

/**
 * Verify for the FAISS actions: the live file loads (in the collector's check process), its
 * vector count matches the id map (and what was published, when this process published it),
 * the map belongs to it, and recall@10 over its own vectors meets the floor.
 */
async function verifyLive(cfg: FaissIndexConfig, expected: Published | undefined): Promise<Verification> {
  const check = await runCheck({ path: cfg.path, recallSample: cfg.recallSample, timeoutMs: 10 * 60_000 });
  if (check.loadable !== true || !check.facts) return { fixed: false, detail: `the live index does not load: ${check.problem ?? 'check failed'}` };
  const vectors = check.facts.vectors ?? 0;
  const problems: string[] = [];
  const notes: string[] = [`loads, ${vectors} vectors`];
  let live: { sha256: string; size: number } | undefined;
  try {
    live = await fileSha256(cfg.path);
  } catch (err) {
    problems.push(`cannot read the live index: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (expected) {
    if (expected.vectors !== vectors) problems.push(`the live index holds ${vectors} vectors, ${expected.vectors} were published`);
    if (live && live.sha256 !== expected.sha256) problems.push('the live index is not the file that was published (replaced since)');
  }
  if (live) {
    const ids = await idsMatch(idsPath(cfg.path), live, vectors);
    if (ids.ok) notes.push(ids.detail);
    else if (expected?.ids || ids.detail !== 'no id map') problems.push(ids.detail);
    else notes.push('no id map (not built by housekeeper)');
  }
  const recall = check.facts.recall;
  if (recall) {
    notes.push(`recall@${recall.k} ${recall.value.toFixed(3)} over ${recall.queries} own vectors`);
    if (recall.value < cfg.recallFloor) problems.push(`recall@${recall.k} ${recall.value.toFixed(3)} is below the floor ${cfg.recallFloor}`);
  } else if (expected?.recall !== undefined) {
    notes.push(`recall not measurable by the checker (${check.facts.recallSkipped ?? 'unknown'}); the build measured ${expected.recall.toFixed(3)}`);
    if (expected.recall < cfg.recallFloor) problems.push(`recall ${expected.recall.toFixed(3)} is below the floor ${cfg.recallFloor}`);
  } else {
    problems.push(`recall not measured: ${check.facts.recallSkipped ?? check.problem ?? 'unknown'}`);
  }
  return problems.length === 0 ? { fixed: true, detail: notes.join('; ') } : { fixed: false, detail: problems.join('; ') };
}

/** Verify of every FAISS action: the live index, against what this process last published for it. */
export function verifyPublished(ctx: ActionContext, index: string): Promise<Verification> {
  const cfg = faissConfig(ctx, index);
  return verifyLive(cfg, lastPublished.get(cfg.name));
}
