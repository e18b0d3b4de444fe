// Exact neighbours and recall@k against them, for the FAISS check process (check-child.ts:
// the collector's recall and faiss-optimize, scanning stored vectors in bounded memory) and
// the build process (rebuild-child.ts: a new generation's recall before it is published).
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import faiss from 'faiss-node';
import type { Index } from 'faiss-node';
import { flatImageHeader, type VectorRun } from './format.ts';

export interface ExactScanOptions {
  /** Vectors per chunk, in bytes: what the scan holds in memory beyond the queries. */
  chunkBytes: number;
  /** Where each chunk is written as a flat index file (removed after loading; the caller cleans up after a kill). */
  chunkFile: string;
  /** Share of wall time the scan works (1: no rests). */
  duty: number;
  /** Checked between chunks: true stops the scan (the result is then undefined). */
  stopped: () => boolean;
}

export interface Neighbour {
  id: number;
  distance: number;
}

/**
 * Exact k nearest stored vectors of every query: the stored vectors are streamed in chunks,
 * each copied as a flat index file (opts.chunkFile) and loaded with Index.read
 * (no number[] of millions of elements), searched, and merged. Not fromBuffer: faiss-node
 * 0.5.1 never frees the reader it copies the buffer into, so every chunk would leak its
 * size (a whole index's worth per check). Memory beyond the loaded index: about two chunks.
 */
export async function exactNeighbours(
  fd: number,
  runs: readonly VectorRun[],
  dim: number,
  metric: 'l2' | 'inner_product',
  queries: number[],
  nq: number,
  k: number,
  opts: ExactScanOptions,
): Promise<Neighbour[][] | undefined> {
  const { chunkBytes, chunkFile: file, duty, stopped } = opts;
  const better = metric === 'l2' ? (a: number, b: number) => a < b : (a: number, b: number) => a > b;
  const best: Neighbour[][] = Array.from({ length: nq }, () => []);
  const perChunk = Math.max(1, Math.floor(chunkBytes / (dim * 4)));
  const copyBuf = Buffer.alloc(1 << 20);
  // Pieces of runs, each at most perChunk vectors, grouped into chunks.
  let pieces: Array<{ run: VectorRun; from: number; count: number }> = [];
  let pending = 0;
  const flush = async (): Promise<boolean> => {
    if (pending === 0) return true;
    const began = performance.now();
    // The chunk as a flat index file: header, then the vectors copied from the index file.
    const out = openSync(file, 'w');
    const ids = new Float64Array(pending);
    try {
      writeSync(out, flatImageHeader(dim, pending, metric));
      let n = 0;
      for (const piece of pieces) {
        const start = piece.run.vectors + piece.from * dim * 4;
        const bytes = piece.count * dim * 4;
        for (let done = 0; done < bytes; ) {
          const len = Math.min(copyBuf.length, bytes - done);
          if (readSync(fd, copyBuf, 0, len, start + done) !== len) throw new Error('short read of stored vectors');
          writeSync(out, copyBuf, 0, len);
          done += len;
        }
        if (piece.run.ids === undefined) {
          for (let i = 0; i < piece.count; i++) ids[n + i] = piece.run.firstId + piece.from + i;
        } else {
          const idBuf = Buffer.alloc(piece.count * 8);
          if (readSync(fd, idBuf, 0, idBuf.length, piece.run.ids + piece.from * 8) !== idBuf.length) throw new Error('short read of ids');
          for (let i = 0; i < piece.count; i++) ids[n + i] = Number(idBuf.readBigInt64LE(i * 8));
        }
        n += piece.count;
      }
    } finally {
      closeSync(out);
    }
    let chunk: Index | undefined;
    try {
      chunk = faiss.Index.read(file);
    } finally {
      rmSync(file, { force: true });
    }
    const kk = Math.min(k, pending);
    const res = chunk.search(queries, kk);
    chunk = undefined;
    for (let q = 0; q < nq; q++) {
      const list = best[q] as Neighbour[];
      for (let j = 0; j < kk; j++) {
        const label = res.labels[q * kk + j] as number;
        if (label < 0) continue;
        list.push({ id: ids[label] as number, distance: res.distances[q * kk + j] as number });
      }
      list.sort((a, b) => (better(a.distance, b.distance) ? -1 : better(b.distance, a.distance) ? 1 : 0));
      list.length = Math.min(list.length, k);
    }
    pieces = [];
    pending = 0;
    // The chunk's native memory is invisible to V8's heuristics: collect it now.
    (globalThis as { gc?: () => void }).gc?.();
    // Duty cycle: rest so the scan works `duty` of the wall time (cf. Postgres's
    // vacuum_cost_delay). The scan is memory-bound, and memory bandwidth and a shared core's
    // caches are what the service's scrapes compete for, which no CPU priority can hand back.
    if (duty < 1) {
      const rest = Math.min(1_000, (performance.now() - began) * (1 / duty - 1));
      await new Promise((r) => setTimeout(r, rest));
    }
    return !stopped();
  };
  for (const run of runs) {
    for (let from = 0; from < run.count; ) {
      const count = Math.min(run.count - from, perChunk - pending);
      pieces.push({ run, from, count });
      pending += count;
      from += count;
      if (pending >= perChunk && !(await flush())) return undefined;
    }
  }
  if (!(await flush())) return undefined;
  return best;
}

/** A search result as each query's list of (label, distance), -1 labels dropped: labels as ids. */
export function neighboursOf(res: { labels: number[]; distances: number[] }, nq: number, k: number): Neighbour[][] {
  const out: Neighbour[][] = [];
  for (let q = 0; q < nq; q++) {
    const list: Neighbour[] = [];
    for (let j = 0; j < k; j++) {
      const id = res.labels[q * k + j] as number;
      if (id >= 0) list.push({ id, distance: res.distances[q * k + j] as number });
    }
    out.push(list);
  }
  return out;
}

/**
 * Recall@k of an index's answers against the exact neighbours. A returned neighbour counts
 * when it is one of the exact k, or ties with the k-th (equal distance): duplicates in the
 * data must not read as lost recall.
 */
export function recallOf(exact: Neighbour[][], ann: { labels: number[]; distances: number[] }, k: number, metric: 'l2' | 'inner_product'): number {
  let hits = 0;
  for (let q = 0; q < exact.length; q++) {
    const truth = exact[q] as Neighbour[];
    const ids = new Set(truth.map((n) => n.id));
    const kth = truth[truth.length - 1]?.distance ?? 0;
    const tol = 1e-5 * Math.max(1, Math.abs(kth));
    for (let j = 0; j < k; j++) {
      const label = ann.labels[q * k + j] as number;
      if (label < 0) continue;
      const d = ann.distances[q * k + j] as number;
      if (ids.has(label) || (metric === 'l2' ? d <= kth + tol : d >= kth - tol)) hits++;
    }
  }
  return exact.length === 0 ? 1 : hits / (exact.length * k);
}

/** faiss-node frees an index in its finalizer, which Node runs after the GC pass: free one before loading the next. */
export function collect(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  return new Promise((r) => setImmediate(() => (gc?.(), r())));
}

