import { Type } from '@sinclair/typebox';
import { constants, type Stats } from 'node:fs';
import { chmod, copyFile, open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { FaissIndexConfig } from '../config.ts';
import { runOptimize } from '../faiss/checker.ts';
import type { IndexHead } from '../faiss/factory.ts';
import { encodeIdsHeader, fileSha256, idsMatch, idsPath, prevIdsPath, prevPath } from '../faiss/ids.ts';
import type { OptimizeResult } from '../faiss/protocol.ts';
import { RECALL_MARGIN } from '../faiss/rebuild-protocol.ts';
import { publishGeneration, reconcileIds, removeFiles, removeLeftovers, tempFiles } from '../faiss/rebuild.ts';
import { defineAction, type RunResult } from './action.ts';
import { bytes } from './backup-support.ts';
import { checkDirectory, faissConfig, faissTargetKey, IndexName, lastPublished, liveHead, recordPublished, verifyPublished } from './faiss-support.ts';

// The runbook's monthly optimization of the vector index. An IVF index searches the nprobe
// lists nearest a query, and the file stores that nprobe (faiss-node cannot set it). Too
// high wastes search time; too low loses recall. This finds the smallest nprobe whose
// recall@10 over a sample of the index's own vectors, against exact search, meets the
// index's recall_floor plus the margin a rebuild uses. Then it publishes a copy of the live
// index with that nprobe in its header, as a rebuild publishes: its id map is rewritten for
// the new file, then the map and the index are renamed over the live ones, and the previous
// pair is kept as .prev. Nothing is rebuilt: the lists, the vectors and the labels are the
// live index's, byte for byte, except the 8 bytes of nprobe.
//
// The measurement runs in the check child (src/faiss/check-child.ts): FAISS aborts the
// process on errors, and it loads the index once per nprobe tried. It uses the same seeded
// sample as the collector's checks, so a repeated run measures the same recall and finds
// nothing to do.

const Params = Type.Object({ index: IndexName }, { additionalProperties: false });

/** The measurement is bounded by the engine's action deadline (the signal); this is a backstop. */
const CHILD_TIMEOUT_MS = 60 * 60_000;

interface Measured {
  kind: 'measured';
  head: IndexHead;
  result: OptimizeResult;
  /** The copy, with the chosen nprobe in it, fsynced; and where its id map goes. */
  files: { index: string; ids: string };
  /** The live file as it was copied (a publish needs it unchanged). */
  live: Stats;
  /** SHA-256 and size of the live index the copy was made from. */
  original: { sha256: string; size: number };
  /** Whether the live index has an id map (it matches the original; one is written for the copy). */
  ids: boolean;
}

type Measurement =
  | Measured
  /** Nothing an nprobe can do: not an IVF index, or one whose recall cannot be measured. */
  | { kind: 'skip'; why: string }
  /** The live index or its map is broken: faiss-restore's case. */
  | { kind: 'broken'; why: string };

const target = (cfg: FaissIndexConfig): number => Math.min(1, cfg.recallFloor + RECALL_MARGIN);

function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/**
 * Copies the live index beside it and has the check child choose the nprobe in the copy.
 * On a `measured` answer the caller owns the temporary files; otherwise none are left.
 */
async function measure(cfg: FaissIndexConfig, signal: AbortSignal): Promise<Measurement> {
  const { head, problem } = await liveHead(cfg.path);
  if (!head) return { kind: 'broken', why: `the live index is ${problem === 'missing' ? 'missing' : `unreadable (${problem})`}` };
  if (!head.ivf) return { kind: 'skip', why: `is ${head.type}, not an IVF index: it has no nprobe to tune` };
  if (head.fourcc !== 'IwFl' || head.metric === 'other') {
    return { kind: 'skip', why: `is ${head.type} (${head.metric}): recall is measured for IVFFlat with L2 or inner product only, so no nprobe can be chosen` };
  }
  await checkDirectory(cfg.path);
  const live = await stat(cfg.path);
  const tmp = tempFiles(cfg.path);
  const files = { index: tmp.index, ids: tmp.ids };
  try {
    // copy_file_range: no data through the service, a reflink where the file system has them.
    await copyFile(cfg.path, files.index, constants.COPYFILE_EXCL);
    await chmod(files.index, live.mode & 0o777);
    if (!sameFile(live, await stat(cfg.path))) throw new Error('the live index changed while it was copied');
    const original = await fileSha256(files.index);
    const map = await idsMatch(idsPath(cfg.path), original, head.ntotal);
    // A crash between a publish's two renames left the previous map live; a run repairs that
    // first (reconcileIds), so the plan does not call it broken.
    const repairable = !map.ok && (await idsMatch(prevIdsPath(cfg.path), original, head.ntotal)).ok;
    if (!map.ok && !repairable && map.detail !== 'no id map') {
      await removeFiles([files.index]);
      return { kind: 'broken', why: `its id map does not match it (${map.detail})` };
    }
    const reply = await runOptimize({ path: files.index, recallSample: cfg.recallSample, target: target(cfg), floor: cfg.recallFloor, signal, timeoutMs: CHILD_TIMEOUT_MS });
    if (!reply.ok) {
      if (reply.loadable === false) {
        await removeFiles([files.index]);
        return { kind: 'broken', why: `the live index does not load: ${reply.error}` };
      }
      throw new Error(reply.error);
    }
    if (reply.result.vectors !== head.ntotal) throw new Error(`the copy holds ${reply.result.vectors} vectors, the live index ${head.ntotal}`);
    return { kind: 'measured', head, result: reply.result, files, live, original, ids: map.ok || repairable };
  } catch (err) {
    await removeFiles([files.index, files.ids]);
    throw err;
  }
}

function recallNote(cfg: FaissIndexConfig, r: OptimizeResult): string {
  return `target ${target(cfg).toFixed(2)}: floor ${cfg.recallFloor} + margin ${RECALL_MARGIN}; over ${r.queries} own vectors against exact search`;
}

function change(r: OptimizeResult): string {
  return `nprobe ${r.nprobeBefore} → ${r.nprobe} of ${r.nlist} lists (recall@${r.k} ${r.recallBefore.toFixed(3)} → ${r.recall.toFixed(3)}${r.metTarget ? '' : ', the most any nprobe reaches'})`;
}

function unchanged(cfg: FaissIndexConfig, r: OptimizeResult): string {
  return r.metTarget
    ? `nprobe ${r.nprobe} of ${r.nlist} lists is already the smallest whose recall@${r.k} (${r.recall.toFixed(3)}) meets the target (${recallNote(cfg, r)})`
    : `nprobe ${r.nprobe} searches every list; recall@${r.k} ${r.recall.toFixed(3)} meets the floor, not the margin (${recallNote(cfg, r)})`;
}

const broken = (cfg: FaissIndexConfig, why: string): string => `FAISS index "${cfg.name}": ${why}; faiss-restore replaces a broken index (from a backup, else a rebuild)`;

/** Writes the id map of the copy: the live map's labels, its header naming the copy (as a build writes it). */
async function writeIds(cfg: FaissIndexConfig, m: Measured, copy: { sha256: string; size: number }): Promise<void> {
  const live = idsPath(cfg.path);
  await copyFile(live, m.files.ids, constants.COPYFILE_EXCL);
  await chmod(m.files.ids, (await stat(live)).mode & 0o777);
  // The map copied is the one that belongs to the index copied, not one published since.
  const was = await idsMatch(m.files.ids, m.original, m.result.vectors);
  if (!was.ok) throw new Error(`the live id map changed while the index was optimized: ${was.detail}`);
  const fh = await open(m.files.ids, 'r+');
  try {
    await fh.write(encodeIdsHeader({ count: m.result.vectors, indexSize: copy.size, indexSha256: copy.sha256 }), 0, undefined, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export default defineAction({
  name: 'faiss-optimize',
  description:
    'The runbook\'s monthly optimization of a FAISS index (config faiss[]): for an IVFFlat index (L2 or inner product), finds ' +
    'the smallest nprobe whose recall@10 over a sample of the index\'s own vectors (recall_sample; the collector\'s sample), ' +
    'against exact search, meets recall_floor + 0.02 (the margin faiss-rebuild uses), and publishes the live index with ' +
    'that nprobe in its header: lower when it searched more lists than the floor needs (faster searches), higher when ' +
    'recall fell below it. The measurement runs in the check process (SCHED_IDLE, nice 19) on a copy made beside the live ' +
    'file, loaded once per nprobe tried (a binary search); the copy is fsynced and loads with the same vector count, its id ' +
    'map (<index>.ids, the same labels) is rewritten with the copy\'s size and SHA-256, then the map and the index are ' +
    'renamed over the live ones, the previous pair kept as <index>.prev and <index>.prev.ids, and "optimize" recorded in the ' +
    'sidecar with the old and new nprobe and the recall. Nothing to do when the nprobe is already that smallest one, or the ' +
    'index is not IVFFlat (flat and HNSW indexes have no nprobe); a missing or broken live file or map is faiss-restore\'s ' +
    'case. The live path changes only by the rename: a failure, abort or kill before it leaves the live index untouched. ' +
    'Idempotent: a repeated run measures the same sample and finds nothing to do. Not disruptive: nothing is rebuilt (the ' +
    'lists and vectors are the live file\'s bytes), the copy is an in-kernel file copy, and the measurement is the work of ' +
    'a few collector checks at idle priority; the live index is never locked. Verify: the live file loads, its vector count ' +
    'matches what was published and its id map, and recall@10 meets the floor.',
  params: Params,
  idempotent: true,
  disruptive: false,
  targetKey: faissTargetKey,

  async plan(ctx, p) {
    const cfg = faissConfig(ctx, p.index);
    const m = await measure(cfg, AbortSignal.timeout(CHILD_TIMEOUT_MS));
    if (m.kind === 'broken') return { summary: broken(cfg, m.why), nothingToDo: true, details: { index: cfg.name, problem: m.why } };
    if (m.kind === 'skip') return { summary: `FAISS index "${cfg.name}" ${m.why}: nothing to optimize`, nothingToDo: true, details: { index: cfg.name } };
    await removeFiles([m.files.index, m.files.ids]);
    const r = m.result;
    const details = { index: cfg.name, path: cfg.path, ...resultDetails(cfg, r) };
    if (r.nprobe === r.nprobeBefore) return { summary: `FAISS index "${cfg.name}": ${unchanged(cfg, r)}`, nothingToDo: true, details };
    return {
      summary:
        `optimize FAISS index "${cfg.name}" (${basename(cfg.path)}; ${m.head.type}, ${m.head.ntotal} vectors): ${change(r)}, ${recallNote(cfg, r)}; ` +
        `publish a copy with the new nprobe by rename and keep the previous as ${basename(prevPath(cfg.path))}`,
      details,
    };
  },

  async run(ctx, p, signal): Promise<RunResult> {
    const started = Date.now();
    const cfg = faissConfig(ctx, p.index);
    lastPublished.delete(cfg.name);
    const repaired = await reconcileIds(cfg.path);
    if (repaired) ctx.log.warn({ action: 'faiss-optimize', index: cfg.name, repaired }, 'FAISS id map repaired');
    const leftovers = await removeLeftovers(cfg.path);
    const m = await measure(cfg, signal);
    if (m.kind === 'broken') throw new Error(broken(cfg, m.why));
    if (m.kind === 'skip') return { summary: `FAISS index "${cfg.name}" ${m.why}: nothing to optimize`, details: { index: cfg.name, optimized: false } };
    const r = m.result;
    const extra = { leftovers_removed: leftovers, ...(repaired ? { repaired } : {}) };
    let copy: { sha256: string; size: number };
    let previousKept: boolean;
    try {
      if (r.nprobe === r.nprobeBefore) {
        return { summary: `FAISS index "${cfg.name}": ${unchanged(cfg, r)}`, details: { index: cfg.name, optimized: false, ...resultDetails(cfg, r), ...extra } };
      }
      copy = await fileSha256(m.files.index);
      if (m.ids) await writeIds(cfg, m, copy);
      if (!sameFile(m.live, await stat(cfg.path))) throw new Error('the live index changed while it was optimized: not published');
      // The last moment an abort is heard: the publish is a few renames and runs to its end.
      signal.throwIfAborted();
      ({ previousKept } = await publishGeneration(cfg.path, { index: m.files.index, ids: m.ids ? m.files.ids : undefined }));
    } finally {
      await removeFiles([m.files.index, m.files.ids]);
    }
    await recordPublished(
      cfg,
      'optimize',
      {
        vectors: r.vectors,
        dimension: r.dimension,
        file_size_bytes: copy.size,
        duration_seconds: (Date.now() - started) / 1000,
        // Beyond the sidecar's fields (readers ignore unknown ones): what changed and why.
        nprobe_before: r.nprobeBefore,
        nprobe: r.nprobe,
        nlist: r.nlist,
        recall_at_10_before: r.recallBefore,
        recall_at_10: r.recall,
        recall_floor: cfg.recallFloor,
        ...(m.ids ? { ids_file: basename(idsPath(cfg.path)) } : {}),
      },
      { vectors: r.vectors, sha256: copy.sha256, ids: m.ids, recall: r.recall },
    );
    ctx.log.info({ action: 'faiss-optimize', index: cfg.name, nprobe_before: r.nprobeBefore, nprobe: r.nprobe, recall: r.recall }, 'FAISS index optimized');
    return {
      summary: `optimized FAISS index "${cfg.name}": ${change(r)}, ${recallNote(cfg, r)}; ${bytes(copy.size)}; ${previousKept ? `previous kept as ${basename(prevPath(cfg.path))}` : 'no previous index'}`,
      details: {
        index: cfg.name,
        path: cfg.path,
        optimized: true,
        ...resultDetails(cfg, r),
        file_size_bytes: copy.size,
        sha256: copy.sha256,
        ids_file: m.ids ? idsPath(cfg.path) : null,
        previous_kept: previousKept ? prevPath(cfg.path) : null,
        seconds: (Date.now() - started) / 1000,
        ...extra,
      },
    };
  },

  async verify(ctx, p) {
    return verifyPublished(ctx, p.index);
  },
});

function resultDetails(cfg: FaissIndexConfig, r: OptimizeResult): Record<string, unknown> {
  return {
    vectors: r.vectors,
    nlist: r.nlist,
    nprobe_before: r.nprobeBefore,
    nprobe: r.nprobe,
    recall_at_10_before: r.recallBefore,
    recall_at_10: r.recall,
    recall_floor: cfg.recallFloor,
    recall_target: target(cfg),
    recall_queries: r.queries,
    measured: r.measured.map((x) => ({ nprobe: x.nprobe, recall_at_10: x.recall, seconds_per_query: Number(x.secondsPerQuery.toPrecision(3)) })),
  };
}
