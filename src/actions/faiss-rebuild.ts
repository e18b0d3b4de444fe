import { Type } from '@sinclair/typebox';
import { basename } from 'node:path';
import { needsTraining } from '../faiss/factory.ts';
import { defineAction } from './action.ts';
import {
  BatchSize,
  buildAndPublish,
  buildSettings,
  checkDirectory,
  describeSettings,
  Factory,
  faissConfig,
  faissTargetKey,
  IndexName,
  liveHead,
  MaxSkipped,
  Metric,
  outcomeDetails,
  outcomeLine,
  resolveSource,
  TrainSize,
  verifyPublished,
} from './faiss-support.ts';
import { checkSignal } from './support.ts';

// The runbook's quarterly rebuild, and the fix for an index that lost rows or recall: a new
// generation built from the source table in a child process, verified, and published by
// rename with the previous one kept (src/faiss/rebuild.ts, docs/faiss.md).

const Params = Type.Object(
  {
    index: IndexName,
    factory: Type.Optional(Factory),
    metric: Type.Optional(Metric),
    train_size: Type.Optional(TrainSize),
    batch_size: Type.Optional(BatchSize),
    nprobe: Type.Optional(Type.Integer({ minimum: 1, maximum: 1 << 20, description: 'IVF: lists searched per query, written into the file (default the live index\'s; raised until recall meets the floor)' })),
    max_skipped_rows: MaxSkipped,
  },
  { additionalProperties: false },
);

export default defineAction({
  name: 'faiss-rebuild',
  description:
    'Rebuilds a FAISS index (config faiss[]) from its source table in a child process (SCHED_IDLE, nice 19; the service ' +
    'keeps answering): one binary COPY in one snapshot streams the rows, the index (the factory param, else the live ' +
    'index\'s type, else faiss[].factory) is trained on a uniform sample when its type needs it, the vectors are added, and ' +
    'the new file is written beside the live one under a temporary name, fsynced and verified (FAISS loads it, ntotal equals ' +
    'the rows, recall@10 of a sample against exact search meets recall_floor; an IVF index\'s nprobe is raised until it ' +
    'does). Then the label → row id map (<index>.ids) and the index are renamed over the live ones, the previous generation ' +
    'kept as <index>.prev and <index>.prev.ids, and the rebuild recorded in the sidecar. The live index path changes only by ' +
    'that rename: a failure, abort or kill at any earlier point leaves it and its map untouched. Idempotent: a repeated run ' +
    'builds an index of the same rows again (the order the server sends them in, and so the labels and the training ' +
    'sample, may differ: it reads in parallel). Disruptive (CPU and I/O for minutes on a large index): maintenance windows only, unless ' +
    'the rule allows. Verify: the live file loads, its vector count matches what was published and its id map, and recall@10 ' +
    'meets the floor.',
  params: Params,
  idempotent: true,
  disruptive: true,
  targetKey: faissTargetKey,

  async plan(ctx, p) {
    const cfg = faissConfig(ctx, p.index);
    const { head, problem } = await liveHead(cfg.path);
    const settings = buildSettings(cfg, p, head);
    const source = await resolveSource(ctx, cfg, checkSignal());
    await checkDirectory(cfg.path);
    const live = head ? `live: ${head.type}, ${head.ntotal} vectors × ${head.dimension}` : `live index ${problem}`;
    return {
      summary: `rebuild FAISS index "${cfg.name}" (${basename(cfg.path)}; ${live}) from ${source.label} as ${describeSettings(settings, needsTraining(settings.factory))}; verify, then replace atomically and keep the previous as ${basename(cfg.path)}.prev`,
      details: { index: cfg.name, path: cfg.path, source: source.label, settings, live: head ?? { problem } },
    };
  },

  async run(ctx, p, signal) {
    const cfg = faissConfig(ctx, p.index);
    const { head } = await liveHead(cfg.path);
    const settings = buildSettings(cfg, p, head);
    const o = await buildAndPublish(ctx, cfg, settings, 'rebuild', signal, head);
    ctx.log.info({ action: 'faiss-rebuild', index: cfg.name, vectors: o.stats.rows, recall: o.stats.recall, seconds: o.stats.seconds }, 'FAISS index rebuilt');
    return { summary: outcomeLine('rebuilt', o, cfg), details: outcomeDetails(o, cfg) };
  },

  async verify(ctx, p) {
    return verifyPublished(ctx, p.index);
  },
});
