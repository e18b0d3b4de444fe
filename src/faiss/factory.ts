// What the maintenance actions need to know about a live index without loading it into FAISS
// (a corrupt file can abort the process that loads it): its type, metric and the parameters
// that name it in FAISS's index_factory language, read from the first bytes of the file.
// Offsets follow faiss/impl/index_write.cpp (1.7.x), as in format.ts.
import { open } from 'node:fs/promises';
import { INDEX_TYPES } from './format.ts';

export interface IndexHead {
  fourcc: string;
  /** FAISS class name, or "unknown". */
  type: string;
  dimension: number;
  ntotal: number;
  metric: 'l2' | 'inner_product' | 'other';
  /** IVF indexes (metric L2 or inner product): lists and the nprobe stored in the file. */
  ivf: { nlist: number; nprobe: number } | undefined;
  /** HNSW indexes: neighbours per node on the upper levels (the M of "HNSW32"). */
  hnswM: number | undefined;
  /** The descriptor that builds an index of the same type, when this type is one we can name. */
  factory: string | undefined;
}

const HEAD_BYTES = 64 * 1024;

/** Reads the head of an index file; throws when it is missing, unreadable or not a FAISS header. */
export async function readIndexHead(path: string): Promise<IndexHead> {
  const fh = await open(path, 'r');
  let b: Buffer;
  try {
    if (!(await fh.stat()).isFile()) throw new Error('not a regular file');
    b = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await fh.read(b, 0, HEAD_BYTES, 0);
    b = b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  return parseIndexHead(b);
}

export function parseIndexHead(b: Buffer): IndexHead {
  if (b.length < 37) throw new Error(`too short for a FAISS index header (${b.length} bytes)`);
  const fourcc = b.toString('latin1', 0, 4);
  const dimension = b.readInt32LE(4);
  const ntotal = Number(b.readBigInt64LE(8));
  const metricType = b.readInt32LE(33);
  if (!/^[\x20-\x7e]{4}$/.test(fourcc) || dimension <= 0 || dimension > 1 << 16 || ntotal < 0) throw new Error('not a FAISS index header');
  const metric = metricType === 1 ? 'l2' : metricType === 0 ? 'inner_product' : 'other';
  let p = 37 + (metricType > 1 ? 4 : 0);
  let ivf: IndexHead['ivf'];
  let hnswM: number | undefined;
  if ((fourcc.startsWith('Iw') || fourcc.startsWith('Iv')) && b.length >= p + 16) {
    ivf = { nlist: Number(b.readBigUInt64LE(p)), nprobe: Number(b.readBigUInt64LE(p + 8)) };
  } else if (fourcc.startsWith('IHN') && b.length >= p + 8) {
    // HNSW: assign_probas (uint64 count + doubles), then cum_nneighbor_per_level (uint64 count +
    // int32s), whose second entry is 2·M (level 0 has 2·M neighbours).
    const probas = Number(b.readBigUInt64LE(p));
    p += 8 + probas * 8;
    if (probas < 1024 && b.length >= p + 16 && Number(b.readBigUInt64LE(p)) >= 2) hnswM = b.readInt32LE(p + 8 + 4) / 2;
  }
  let factory: string | undefined;
  if (fourcc === 'IxF2' || fourcc === 'IxFI' || fourcc === 'IxFl') factory = 'Flat';
  else if (fourcc === 'IwFl' && ivf && ivf.nlist > 0) factory = `IVF${ivf.nlist},Flat`;
  else if (fourcc === 'IHNf' && hnswM !== undefined && Number.isInteger(hnswM) && hnswM > 0) factory = `HNSW${hnswM}`;
  return { fourcc, type: INDEX_TYPES[fourcc] ?? 'unknown', dimension, ntotal, metric, ivf, hnswM, factory };
}

/** Whether an index built by this descriptor needs training (a quantizer or codebook). */
export function needsTraining(factory: string): boolean {
  return /IVF|IMI|PQ|SQ|LSH|PCA|OPQ|ITQ|RR|LSQ|RQ/.test(factory);
}

/** Points the descriptor's clustering needs at least: FAISS aborts the process with fewer. */
export function minTrainingPoints(factory: string): number {
  let need = 1;
  const ivf = /IVF(\d+)/.exec(factory);
  if (ivf) need = Math.max(need, Number(ivf[1]));
  const imi = /IMI(\d+)x(\d+)/.exec(factory);
  if (imi) need = Math.max(need, 2 ** Number(imi[2]));
  // Product quantizers cluster each sub-space into 2^nbits centroids (8 bits unless "PQ16x4").
  for (const pq of factory.matchAll(/PQ\d+(?:x(\d+))?/g)) need = Math.max(need, 2 ** Number(pq[1] ?? 8));
  return need;
}

/** nlist of an IVF descriptor, if it is one. */
export function nlistOf(factory: string): number | undefined {
  const m = /IVF(\d+)/.exec(factory);
  return m ? Number(m[1]) : undefined;
}
