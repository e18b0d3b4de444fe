// Real FAISS index files for the FAISS collector's tests and benchmark, built with faiss-node.
import { renameSync, writeFileSync } from 'node:fs';
import faiss from 'faiss-node';
import type { Index } from 'faiss-node';
import { prng } from '../../src/util/random.ts';

/** `count` vectors of uniform [0, 1) numbers from the seed, so failures reproduce. */
export function randomVectors(count: number, dim: number, seed: number): number[] {
  return Array.from({ length: count * dim }, prng(seed));
}

export function flatIndex(vectors: number[], dim: number): Index {
  const index = new faiss.IndexFlatL2(dim);
  index.add(vectors);
  return index;
}

/**
 * An IVF-Flat (L2) index trained on and filled with `vectors`. Guards FAISS's aborting
 * paths: at least nlist training points, trained before add.
 */
export function ivfIndex(vectors: number[], dim: number, nlist: number, opts: { trainOn?: number; batch?: number } = {}): Index {
  const count = vectors.length / dim;
  const trainOn = Math.min(count, opts.trainOn ?? count);
  if (trainOn < nlist) throw new Error(`IVF${nlist} needs at least ${nlist} training vectors, got ${trainOn}`);
  const index = faiss.Index.fromFactory(dim, `IVF${nlist},Flat`, faiss.MetricType.METRIC_L2);
  index.train(trainOn === count ? vectors : vectors.slice(0, trainOn * dim));
  if (!index.isTrained()) throw new Error('IVF index did not train');
  const batch = opts.batch ?? count;
  for (let i = 0; i < count; i += batch) index.add(vectors.slice(i * dim, Math.min(count, i + batch) * dim));
  return index;
}

/**
 * The index's file image with nprobe set: faiss-node has no nprobe setter, and the IVF-Flat
 * header stores it as a uint64 at byte 45 (scripts/faiss-shim/NOTES.md).
 */
export function ivfImage(index: Index, nprobe: number): Buffer {
  const buf = index.toBuffer();
  if (buf.subarray(0, 4).toString('latin1') !== 'IwFl' || buf.readInt32LE(33) > 1) throw new Error('not an IVF-Flat L2/IP image');
  buf.writeBigUInt64LE(BigInt(nprobe), 45);
  return buf;
}

/** Writes a file the way a rebuild should: a temporary file in the same directory, renamed over. */
export function writeAtomically(path: string, data: Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
