import { Type } from '@sinclair/typebox';
import { basename } from 'node:path';
import type { FaissIndexConfig } from '../config.ts';
import type { IndexHead } from '../faiss/factory.ts';
import { defineAction, type ActionContext } from './action.ts';
import {
  BatchSize,
  buildAndPublish,
  buildSettings,
  checkDirectory,
  describeSettings,
  faissConfig,
  faissTargetKey,
  IndexName,
  lastPublished,
  liveHead,
  MaxSkipped,
  outcomeDetails,
  outcomeLine,
  resolveSource,
  TrainSize,
  verifyPublished,
  type BuildSettings,
} from './faiss-support.ts';
import { checkSignal } from './support.ts';

// The runbook's weekly (Wednesday) retraining: as the data drifts, an IVF index's lists
// grow unevenly and its recall falls. Retraining trains the quantizer afresh on a uniform
// sample of today's rows and re-adds every row: a build of the live index's own type and
// parameters (nlist, metric; nprobe kept unless recall needs more), published like a rebuild.
// Indexes with nothing to train (flat, HNSW-flat) have nothing to do.

const Params = Type.Object(
  {
    index: IndexName,
    train_size: Type.Optional(TrainSize),
    batch_size: Type.Optional(BatchSize),
    max_skipped_rows: MaxSkipped,
  },
  { additionalProperties: false },
);

/** Index types without a trained quantizer or codebook. */
const UNTRAINED = new Set(['IxF2', 'IxFI', 'IxFl', 'IHNf']);

interface Intent {
  cfg: FaissIndexConfig;
  head: IndexHead;
  /** Undefined when there is nothing to train. */
  settings: BuildSettings | undefined;
}

async function intent(ctx: ActionContext, p: { index: string; train_size?: number | undefined; batch_size?: number | undefined; max_skipped_rows?: number | undefined }): Promise<Intent> {
  const cfg = faissConfig(ctx, p.index);
  const { head, problem } = await liveHead(cfg.path);
  if (!head) {
    throw new Error(`cannot retrain FAISS index "${cfg.name}": the live index is ${problem === 'missing' ? 'missing' : `unreadable (${problem})`}; faiss-restore or faiss-rebuild replace it`);
  }
  if (UNTRAINED.has(head.fourcc)) return { cfg, head, settings: undefined };
  // Same type as the live index: its descriptor when the file names it, else config's.
  if (head.factory === undefined && cfg.factory === undefined) {
    throw new Error(`the live index of "${cfg.name}" is ${head.type}, which cannot be named from its file: set faiss[].factory in config`);
  }
  return { cfg, head, settings: buildSettings(cfg, { train_size: p.train_size, batch_size: p.batch_size, max_skipped_rows: p.max_skipped_rows }, head) };
}

export default defineAction({
  name: 'faiss-retrain',
  description:
    'The runbook\'s weekly retraining of a FAISS index (config faiss[]): trains the quantizer afresh on a uniform sample of ' +
    'the source table\'s current rows and re-adds every row, keeping the live index\'s type and parameters (nlist, metric, ' +
    'nprobe unless recall needs more). Runs exactly like faiss-rebuild (child process, temporary file, fsync, verify: loads, ' +
    'ntotal equals rows, recall@10 meets recall_floor; then the id map and the index are renamed over the live ones, the ' +
    'previous generation kept as <index>.prev) and records "retrain" in the sidecar. A flat or HNSW-flat index has nothing to ' +
    'train: skipped. A failure, abort or kill before the rename leaves the live index untouched. Idempotent. Disruptive (CPU ' +
    'for minutes): maintenance windows only, unless the rule allows. Verify: as faiss-rebuild.',
  params: Params,
  idempotent: true,
  disruptive: true,
  targetKey: faissTargetKey,

  async plan(ctx, p) {
    const { cfg, head, settings } = await intent(ctx, p);
    if (!settings) return { summary: `FAISS index "${cfg.name}" is ${head.type}: nothing to train`, nothingToDo: true, details: { live: head } };
    const source = await resolveSource(ctx, cfg, checkSignal());
    await checkDirectory(cfg.path);
    return {
      summary: `retrain FAISS index "${cfg.name}" (${basename(cfg.path)}; ${head.type}, ${head.ntotal} vectors) from ${source.label}: ${describeSettings(settings, true)}; verify, then replace atomically`,
      details: { index: cfg.name, path: cfg.path, source: source.label, settings, live: head },
    };
  },

  async run(ctx, p, signal) {
    const { cfg, head, settings } = await intent(ctx, p);
    if (!settings) {
      lastPublished.delete(cfg.name);
      return { summary: `FAISS index "${cfg.name}" is ${head.type}: nothing to train`, details: { index: cfg.name, type: head.type } };
    }
    const o = await buildAndPublish(ctx, cfg, settings, 'retrain', signal, head);
    ctx.log.info({ action: 'faiss-retrain', index: cfg.name, vectors: o.stats.rows, recall: o.stats.recall, seconds: o.stats.seconds }, 'FAISS index retrained');
    return { summary: outcomeLine('retrained', o, cfg), details: outcomeDetails(o, cfg) };
  },

  async verify(ctx, p) {
    return verifyPublished(ctx, p.index);
  },
});
