// One check of one FAISS index file, in a child process of the service (see checker.ts for
// why a process and not a worker thread). It loads the index once, times single-query probe
// searches, measures recall@k of the index against exact search over its own stored vectors,
// sends the result over IPC and exits, so the index's memory goes back to the system with
// the process.
//
// Or, for faiss-optimize, one optimize of a copy of an IVFFlat index the parent made: the
// same recall measurement, at each nprobe a binary search tries (written into the copy's
// header, then the copy loaded again: faiss-node has no nprobe setter), the chosen nprobe
// left in the copy and fsynced. The live index is only read, by the parent.
//
// faiss-node turns a C++ exception outside read/fromBuffer/fromFactory/mergeFrom into
// std::terminate (scripts/faiss-shim/NOTES.md). Every call below is guarded so it cannot
// reach such a path: search only on a trained, non-empty index, with 0 < k ≤ ntotal, and
// queries of exactly `dimension` floats; no add, train or FAISS write at all.
import { closeSync, fstatSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setPriority } from 'node:os';
import faiss from 'faiss-node';
import type { Index } from 'faiss-node';
import { fileReader, ivfNprobeOffset, LayoutError, locate, readLayout, type IndexLayout, type VectorRun } from './format.ts';
import { SCRATCH_PREFIX, type CheckFacts, type CheckJob, type ChildMessage, type NprobeMeasure, type OptimizeJob, type OptimizeReply } from './protocol.ts';
import { prng, samplePositions } from '../util/random.ts';
import { collect, exactNeighbours, recallOf } from './exact.ts';

function send(msg: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

/** The parent went away (service stopped): stop between steps rather than finish for no one. */
function parentGone(): boolean {
  return !process.connected;
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? '').slice(0, 300);
}

function toNumbers(buf: Buffer, offset: number, floats: number, out: number[]): void {
  for (let i = 0; i < floats; i++) out.push(buf.readFloatLE(offset + i * 4));
}

/** The stored vectors at the given positions, concatenated (number[], what faiss-node takes). */
function readVectors(fd: number, runs: readonly VectorRun[], starts: readonly number[], positions: readonly number[], dim: number): number[] {
  const out: number[] = [];
  const b = Buffer.alloc(dim * 4);
  for (const p of positions) {
    const r = locate(starts, p);
    const at = (runs[r] as VectorRun).vectors + (p - (starts[r] as number)) * dim * 4;
    if (readSync(fd, b, 0, b.length, at) !== b.length) throw new Error(`short read at ${at}`);
    toNumbers(b, 0, dim, out);
  }
  return out;
}

/** Share of wall time the exact scan works; it rests the remainder. */
const DUTY = 0.5;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Our own reading of the file's layout, before FAISS sees it. */
interface PreRead {
  fd: number | undefined;
  layout: IndexLayout | undefined;
  /** Why the layout is not known (unsupported or inconsistent, not damaged). */
  why: string | undefined;
  /** Set when the structure runs past the end of the file or out of range. */
  damaged: string | undefined;
}

/**
 * Reads the layout from one descriptor, kept open to the end of the check (the stored
 * vectors are read through it). Anything that is not a regular file (a FIFO, a device) is
 * left to FAISS unread; so is a file that cannot be opened (FAISS's read says why).
 */
function preRead(path: string): PreRead {
  const out: PreRead = { fd: undefined, layout: undefined, why: undefined, damaged: undefined };
  try {
    if (!statSync(path).isFile()) return out;
    out.fd = openSync(path, 'r');
  } catch {
    return out;
  }
  try {
    const layout = readLayout(fileReader(out.fd, fstatSync(out.fd).size));
    if (layout.damaged) out.damaged = layout.why;
    else out.layout = layout;
  } catch (err) {
    if (err instanceof LayoutError && err.damaged) out.damaged = firstLine(err);
    else out.why = firstLine(err);
  }
  return out;
}

/**
 * Fills `facts` step by step (so a failure late in the check keeps what was learnt); returns
 * false when the parent went away mid-check and nothing should be sent.
 */
async function check(job: CheckJob, facts: CheckFacts): Promise<boolean> {
  const pre = preRead(job.path);
  try {
    // A structure that runs past the end of the file is not handed to FAISS: its reader
    // allocates what a count says before it notices the file is short, and for a corrupt
    // count that is std::bad_alloc (an abort) or, where memory is overcommitted, the OOM killer.
    if (pre.damaged !== undefined) {
      facts.loadable = false;
      facts.error = `truncated or corrupt: ${pre.damaged}`;
      return true;
    }
    return await checkIndex(job, facts, pre);
  } finally {
    if (pre.fd !== undefined) closeSync(pre.fd);
  }
}

async function checkIndex(job: CheckJob, facts: CheckFacts, pre: PreRead): Promise<boolean> {
  let index: Index;
  try {
    index = faiss.Index.read(job.path);
  } catch (err) {
    facts.loadable = false;
    facts.error = firstLine(err);
    return true;
  }
  const vectors = index.ntotal();
  const dimension = index.getDimension();
  const trained = index.isTrained();
  Object.assign(facts, { loadable: true, vectors, dimension, trained });
  await send({ kind: 'loaded', vectors, dimension, trained });

  let layout = pre.layout;
  let layoutWhy = pre.why;
  // The file could have been replaced between our read and FAISS's.
  if (layout && (layout.header.ntotal !== vectors || layout.header.dimension !== dimension)) {
    layoutWhy = 'the file changed while it was checked';
    layout = undefined;
  }
  if (layout) {
    facts.type = layout.type;
    facts.metric = layout.metric;
    if (layout.ivf) facts.ivf = layout.ivf;
  }
  // Guards against FAISS's aborting paths: a search needs a trained, non-empty index and 0 < k ≤ ntotal.
  if (!trained || vectors === 0 || dimension <= 0) {
    facts.recallSkipped = !trained ? 'index is not trained' : 'index is empty';
    return true;
  }
  const k = Math.min(job.k, vectors);
  const fd = pre.fd;
  const runs = fd === undefined ? undefined : layout?.runs;
  const starts: number[] = [];
  for (let i = 0, acc = 0; runs && i < runs.length; acc += (runs[i] as VectorRun).count, i++) starts.push(acc);
  const positions = samplePositions(vectors, Math.min(job.recallSample, vectors), prng(job.seed));
  // Queries: the index's own vectors when they can be read, else seeded random vectors
  // (enough to time a probe; recall then is not measured).
  const queries = runs && fd !== undefined ? readVectors(fd, runs, starts, positions, dimension) : Array.from({ length: positions.length * dimension }, prng(job.seed));
  const nq = positions.length;

  // Probe: single-query searches, as the application makes them.
  const times: number[] = [];
  const probes = Math.max(1, Math.min(job.probes, 1000));
  for (let i = 0; i < probes; i++) {
    const q = i % nq;
    const one = queries.slice(q * dimension, (q + 1) * dimension);
    const t0 = process.hrtime.bigint();
    index.search(one, k);
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  facts.probe = { medianSeconds: median(times), maxSeconds: Math.max(...times), queries: probes, k };
  if (parentGone()) return false;

  if (!runs || !layout || fd === undefined) {
    facts.recallSkipped = layout?.why ?? layoutWhy ?? 'stored vectors not readable';
    return true;
  }
  if (layout.metric === 'other') {
    facts.recallSkipped = 'exact search is implemented for L2 and inner product only';
    return true;
  }
  const ann = index.search(queries, k);
  const exact = await exactNeighbours(fd, runs, dimension, layout.metric, queries, nq, k, { chunkBytes: job.chunkBytes, chunkFile: join(scratch, 'chunk.index'), duty: DUTY, stopped: parentGone });
  if (!exact) return false;
  facts.recall = { value: recallOf(exact, ann, k, layout.metric), queries: nq, k };
  return true;
}

/**
 * faiss-optimize (see the top of this file). Returns undefined when the parent went away.
 * Recall does not fall as nprobe grows (the lists searched at n are among those at n + 1,
 * so each of the k answers is as near or nearer), so a binary search finds the smallest
 * nprobe that meets the target in about log2(nlist) loads of the copy.
 */
async function optimize(job: OptimizeJob): Promise<OptimizeReply | undefined> {
  const pre = preRead(job.path);
  try {
    if (pre.damaged !== undefined) return { ok: false, loadable: false, error: `truncated or corrupt: ${pre.damaged}` };
    let index: Index | undefined;
    try {
      index = faiss.Index.read(job.path);
    } catch (err) {
      return { ok: false, loadable: false, error: firstLine(err) };
    }
    const vectors = index.ntotal();
    const dimension = index.getDimension();
    const trained = index.isTrained();
    index = undefined;
    await send({ kind: 'loaded', vectors, dimension, trained });
    const layout = pre.layout;
    const fd = pre.fd;
    if (!layout || fd === undefined) return { ok: false, loadable: true, error: `the index's layout is not readable: ${pre.why ?? 'not a regular file'}` };
    const { ivf, runs, metric } = layout;
    if (!ivf || !runs || metric === 'other') return { ok: false, loadable: true, error: `${layout.type}: ${layout.why ?? 'not an IVF index'}` };
    if (layout.header.ntotal !== vectors || layout.header.dimension !== dimension) return { ok: false, loadable: true, error: 'the file changed while it was read' };
    if (!trained || vectors === 0 || ivf.nlist < 1) return { ok: false, loadable: true, error: !trained ? 'index is not trained' : vectors === 0 ? 'index is empty' : 'index has no lists' };

    const k = Math.min(job.k, vectors);
    const starts: number[] = [];
    for (let i = 0, acc = 0; i < runs.length; acc += (runs[i] as VectorRun).count, i++) starts.push(acc);
    const positions = samplePositions(vectors, Math.min(job.recallSample, vectors), prng(job.seed));
    const queries = readVectors(fd, runs, starts, positions, dimension);
    const exact = await exactNeighbours(fd, runs, dimension, metric, queries, positions.length, k, { chunkBytes: job.chunkBytes, chunkFile: join(scratch, 'chunk.index'), duty: DUTY, stopped: parentGone });
    if (!exact) return undefined;

    const at = ivfNprobeOffset(layout) as number; // an IVF layout: checked above
    const out = openSync(job.path, 'r+');
    try {
      const write = (nprobe: number): void => {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(BigInt(nprobe));
        if (writeSync(out, b, 0, 8, at) !== 8) throw new Error('short write of nprobe');
      };
      const measured: NprobeMeasure[] = [];
      const recallAt = async (nprobe: number): Promise<number> => {
        const seen = measured.find((m) => m.nprobe === nprobe);
        if (seen) return seen.recall;
        write(nprobe);
        let copy: Index | undefined = faiss.Index.read(job.path);
        if (copy.ntotal() !== vectors || copy.getDimension() !== dimension) throw new Error('the copy does not load as the index');
        const t0 = performance.now();
        const ann = copy.search(queries, k);
        const secondsPerQuery = (performance.now() - t0) / 1000 / positions.length;
        copy = undefined;
        await collect();
        const recall = recallOf(exact, ann, k, metric);
        measured.push({ nprobe, recall, secondsPerQuery });
        return recall;
      };
      const nprobeBefore = ivf.nprobe;
      const current = Math.max(1, Math.min(nprobeBefore, ivf.nlist));
      // Every nprobe up to lo misses the target (0: none known); hi meets it, when any does.
      let lo = 0;
      let hi = current;
      if ((await recallAt(current)) < job.target) [lo, hi] = [current, ivf.nlist];
      // When even nlist misses the target, nlist it is, if it meets the floor (below).
      if ((await recallAt(hi)) >= job.target) {
        while (hi - lo > 1) {
          if (parentGone()) return undefined;
          const mid = (lo + hi) >> 1;
          if ((await recallAt(mid)) >= job.target) hi = mid;
          else lo = mid;
        }
      }
      const nprobe = hi;
      const recall = await recallAt(nprobe);
      if (recall < job.floor) {
        return { ok: false, loadable: true, error: `even searching all ${ivf.nlist} lists, recall@${k} is ${recall.toFixed(3)}, below the floor ${job.floor}` };
      }
      write(nprobe);
      fsyncSync(out);
      // What is published must load as the index it copies.
      const last = faiss.Index.read(job.path);
      if (last.ntotal() !== vectors || last.getDimension() !== dimension) throw new Error('the optimized copy does not load as the index');
      const recallBefore = measured.find((m) => m.nprobe === current)?.recall ?? recall;
      return {
        ok: true,
        result: { vectors, dimension, nlist: ivf.nlist, nprobeBefore, nprobe, recallBefore, recall, metTarget: recall >= job.target, queries: positions.length, k, measured },
      };
    } finally {
      closeSync(out);
    }
  } finally {
    if (pre.fd !== undefined) closeSync(pre.fd);
  }
}

// Chunk files go in a directory of our own (the parent names the base: /dev/shm or the
// system's temporary directory), removed when this process exits; the pid in its name lets
// the parent sweep what a killed check left behind.
const scratch = mkdtempSync(join(process.argv[2] ?? '/tmp', `${SCRATCH_PREFIX}${process.pid}-`));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));
process.on('disconnect', () => process.exit(0));
process.once('message', (raw: unknown) => {
  void (async () => {
    const job = raw as CheckJob | OptimizeJob;
    if (job.kind === 'optimize') {
      let reply: OptimizeReply | undefined;
      try {
        reply = await optimize(job);
      } catch (err) {
        // Ours, not FAISS's (its read errors are caught; its other errors abort the process).
        reply = { ok: false, loadable: undefined, error: firstLine(err) };
      }
      if (reply) await send({ kind: 'optimized', reply });
      process.exit(0);
    }
    const facts: CheckFacts = { loadable: false };
    let report = true;
    try {
      report = await check(job, facts);
    } catch (err) {
      // A JS error here is ours (a short read of a file replaced mid-check, ...), not FAISS's:
      // FAISS's own read errors are caught above and its other errors abort the process.
      facts.incomplete = firstLine(err);
    }
    if (report) await send({ kind: 'result', facts });
    process.exit(0);
  })();
});
try {
  // Lowest fair share: the service's event loop must win every contest for a CPU.
  setPriority(19);
} catch {
  // not permitted here: the thread limits (set by the parent) still apply
}
await send({ kind: 'ready', scratch });
