// The FAISS index file layout (faiss/impl/index_write.cpp, 1.7.x), read just far enough to
// name the index type and metric, read the IVF parameters, and find the stored float32
// vectors. faiss-node has no `reconstruct`, so this is how the checker gets a sample of an
// index's own vectors and the exact neighbours to measure recall against.
//
// Every read is bounds-checked against the file size and every count against what the
// file could hold, so a corrupt file makes this throw a LayoutError, never allocate wildly.
// Only the child processes use it (check-child.ts; rebuild-child.ts on the file it just
// wrote), and only after FAISS itself has loaded the file, or written it.
import { readSync } from 'node:fs';

/** Random access to the file's bytes. */
export interface ByteReader {
  readonly size: number;
  read(offset: number, length: number): Buffer;
}

/** A ByteReader over an open file descriptor (positioned reads; a short read is an error). */
export function fileReader(fd: number, size: number): ByteReader {
  return {
    size,
    read(offset, length) {
      const b = Buffer.alloc(length);
      const got = readSync(fd, b, 0, length, offset);
      if (got !== length) throw new Error(`short read at ${offset}`);
      return b;
    },
  };
}

export class LayoutError extends Error {
  /**
   * The file cannot be a valid index: a count or length in it runs past the end of the file
   * or out of range. FAISS would fail reading it, or first try to allocate what the count
   * says, which for a corrupt count means std::bad_alloc (an abort) or, where memory is
   * overcommitted, the OOM killer.
   */
  readonly damaged: boolean;
  constructor(message: string, damaged = false) {
    super(message);
    this.name = 'LayoutError';
    this.damaged = damaged;
  }
}

/** FAISS's fourcc → class name, for the types FAISS 1.7.x writes. The info metric's `type` label. */
export const INDEX_TYPES: Readonly<Record<string, string>> = {
  IxFI: 'IndexFlatIP',
  IxF2: 'IndexFlatL2',
  IxFl: 'IndexFlat',
  IxPQ: 'IndexPQ',
  IxPo: 'IndexPQ',
  IxSQ: 'IndexScalarQuantizer',
  IxLa: 'IndexLattice',
  IxHe: 'IndexLSH',
  IxMp: 'IndexIDMap',
  IxM2: 'IndexIDMap2',
  IxPT: 'IndexPreTransform',
  IxRF: 'IndexRefineFlat',
  Ix2L: 'Index2Layer',
  IPfs: 'IndexPQFastScan',
  IwFl: 'IndexIVFFlat',
  IwFd: 'IndexIVFFlatDedup',
  IwPQ: 'IndexIVFPQ',
  IvPQ: 'IndexIVFPQ',
  IwQR: 'IndexIVFPQR',
  IvQR: 'IndexIVFPQR',
  IwSq: 'IndexIVFScalarQuantizer',
  IwSQ: 'IndexIVFScalarQuantizer',
  IwSh: 'IndexIVFSpectralHash',
  IwPf: 'IndexIVFPQFastScan',
  IHNf: 'IndexHNSWFlat',
  IHNp: 'IndexHNSWPQ',
  IHNs: 'IndexHNSWSQ',
  IHN2: 'IndexHNSW2Level',
  INSf: 'IndexNSGFlat',
};

export interface IndexHeader {
  fourcc: string;
  dimension: number;
  ntotal: number;
  trained: boolean;
  /** FAISS MetricType: 0 inner product, 1 L2, others (L1, Linf, ...) above. */
  metricType: number;
  /** Offset of the first byte after the header. */
  end: number;
}

/** A run of `count` vectors stored contiguously (float32 × dimension each), with their ids. */
export interface VectorRun {
  /** File offset of the first vector. */
  vectors: number;
  /** File offset of the run's int64 ids; undefined when ids are positions (flat storage). */
  ids: number | undefined;
  /** Id of the first vector when ids are positions. */
  firstId: number;
  count: number;
}

export interface IndexLayout {
  header: IndexHeader;
  /** Class name, or "unknown" for a fourcc this table does not know. */
  type: string;
  metric: 'l2' | 'inner_product' | 'other';
  ivf: { nlist: number; nprobe: number } | undefined;
  /** Where the stored vectors are, in index order; undefined when they cannot be read (see why). */
  runs: VectorRun[] | undefined;
  /** Why the stored vectors are not readable for this type (recall is then not measured). */
  why: string | undefined;
  /** Set when the structure runs past the end of the file or out of range (see LayoutError.damaged). */
  damaged: boolean;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

class Cursor {
  pos: number;
  private readonly r: ByteReader;
  constructor(r: ByteReader, pos: number) {
    this.r = r;
    this.pos = pos;
  }
  private take(n: number): Buffer {
    if (this.pos + n > this.r.size) throw new LayoutError(`file ends at ${this.r.size}, needed ${n} bytes at ${this.pos}`, true);
    const b = this.r.read(this.pos, n);
    this.pos += n;
    return b;
  }
  fourcc(): string {
    return this.take(4).toString('latin1');
  }
  u8(): number {
    return this.take(1).readUInt8(0);
  }
  i32(): number {
    return this.take(4).readInt32LE(0);
  }
  u64(): number {
    const v = this.take(8).readBigUInt64LE(0);
    if (v > BigInt(MAX_SAFE)) throw new LayoutError(`value ${v} at ${this.pos - 8} is out of range`, true);
    return Number(v);
  }
  i64(): number {
    const v = this.take(8).readBigInt64LE(0);
    if (v > BigInt(MAX_SAFE) || v < -BigInt(MAX_SAFE)) throw new LayoutError(`value ${v} at ${this.pos - 8} is out of range`, true);
    return Number(v);
  }
  /** Skips `count` items of `size` bytes, checking they fit in the file. */
  skip(count: number, size: number): void {
    const n = count * size;
    if (!Number.isSafeInteger(n) || this.pos + n > this.r.size) throw new LayoutError(`${count} items of ${size} bytes at ${this.pos} run past the end of the file (${this.r.size} bytes)`, true);
    this.pos += n;
  }
  /** A FAISS std::vector: a uint64 element count, then the elements. Returns the count. */
  skipVector(size: number): number {
    const count = this.u64();
    this.skip(count, size);
    return count;
  }
}

function readHeader(c: Cursor): IndexHeader {
  const fourcc = c.fourcc();
  const dimension = c.i32();
  const ntotal = c.i64();
  c.i64(); // two unused fields (FAISS writes 1 << 20)
  c.i64();
  const trained = c.u8() !== 0;
  const metricType = c.i32();
  if (metricType > 1) c.skip(1, 4); // metric_arg (float)
  if (dimension <= 0 || dimension > 1 << 16) throw new LayoutError(`implausible dimension ${dimension}`);
  if (ntotal < 0) throw new LayoutError(`negative vector count ${ntotal}`);
  return { fourcc, dimension, ntotal, trained, metricType, end: c.pos };
}

function metricName(t: number): IndexLayout['metric'] {
  return t === 1 ? 'l2' : t === 0 ? 'inner_product' : 'other';
}

const FLAT = new Set(['IxFI', 'IxF2', 'IxFl']);

/** A flat index at the cursor: header, then its float32 vectors. Leaves the cursor after it. */
function readFlat(c: Cursor): { header: IndexHeader; runs: VectorRun[] } {
  const header = readHeader(c);
  if (!FLAT.has(header.fourcc)) throw new LayoutError(`expected a flat index, found ${header.fourcc}`);
  const floats = c.u64();
  const start = c.pos;
  c.skip(floats, 4);
  if (floats !== header.ntotal * header.dimension) throw new LayoutError(`flat index holds ${floats} floats, expected ${header.ntotal}×${header.dimension}`);
  return { header, runs: header.ntotal > 0 ? [{ vectors: start, ids: undefined, firstId: 0, count: header.ntotal }] : [] };
}

/** Skips an index at the cursor whose layout is understood (used for IVF quantizers). */
function skipQuantizer(c: Cursor): void {
  const save = c.pos;
  const fourcc = c.fourcc();
  c.pos = save;
  if (!FLAT.has(fourcc)) throw new LayoutError(`IVF quantizer of type ${fourcc} is not supported`);
  readFlat(c);
}

/** IVF inverted lists ("ilar"): runs of codes and ids, one per non-empty list. */
function readInvertedLists(c: Cursor, header: IndexHeader, nlist: number): VectorRun[] {
  const kind = c.fourcc();
  if (kind === 'il00') return [];
  if (kind !== 'ilar') throw new LayoutError(`inverted lists of kind ${kind} are not supported`);
  const n = c.u64();
  const codeSize = c.u64();
  if (n !== nlist) throw new LayoutError(`inverted lists count ${n} differs from nlist ${nlist}`);
  if (codeSize !== header.dimension * 4) throw new LayoutError(`code size ${codeSize} is not dimension × 4`);
  const listType = c.fourcc();
  const sizes: Array<[number, number]> = [];
  const count = c.u64();
  if (listType === 'full') {
    if (count !== nlist) throw new LayoutError(`full list sizes hold ${count} entries, expected ${nlist}`);
    for (let i = 0; i < count; i++) sizes.push([i, c.u64()]);
  } else if (listType === 'sprs') {
    if (count % 2 !== 0 || count > 2 * nlist) throw new LayoutError(`sparse list sizes hold ${count} entries`);
    for (let i = 0; i < count; i += 2) sizes.push([c.u64(), c.u64()]);
  } else {
    throw new LayoutError(`list size encoding ${listType} is not supported`);
  }
  const runs: VectorRun[] = [];
  let total = 0;
  for (const [, size] of sizes) {
    if (size === 0) continue;
    const vectors = c.pos;
    c.skip(size, codeSize);
    const ids = c.pos;
    c.skip(size, 8);
    runs.push({ vectors, ids, firstId: 0, count: size });
    total += size;
  }
  if (total !== header.ntotal) throw new LayoutError(`inverted lists hold ${total} vectors, header says ${header.ntotal}`);
  return runs;
}

/**
 * Reads the layout of the index file. Throws LayoutError when the header itself is
 * unreadable; past the header, problems are reported in `why` and `damaged`.
 */
export function readLayout(r: ByteReader): IndexLayout {
  const c = new Cursor(r, 0);
  const header = readHeader(c);
  const base = {
    header,
    type: INDEX_TYPES[header.fourcc] ?? 'unknown',
    metric: metricName(header.metricType),
  };
  const partial = (ivf: IndexLayout['ivf'], why: string, damaged = false): IndexLayout => ({ ...base, ivf, runs: undefined, why, damaged });
  let ivfSeen: IndexLayout['ivf'];
  try {
    if (FLAT.has(header.fourcc)) {
      c.pos = 0;
      return { ...base, ivf: undefined, runs: readFlat(c).runs, why: undefined, damaged: false };
    }
    if (header.fourcc.startsWith('Iw') || header.fourcc.startsWith('Iv')) {
      // Every IVF type writes the IVF header first: nlist, nprobe, quantizer, direct map.
      const nlist = c.u64();
      const nprobe = c.u64();
      const ivf = { nlist, nprobe };
      ivfSeen = ivf;
      skipQuantizer(c);
      const dmType = c.u8();
      c.skipVector(8);
      if (dmType === 2) c.skipVector(16); // hashtable direct map: (id, list/offset) pairs
      if (header.fourcc !== 'IwFl') return partial(ivf, `${base.type} stores encoded vectors, not raw ones`);
      return { ...base, ivf, runs: readInvertedLists(c, header, nlist), why: undefined, damaged: false };
    }
    if (header.fourcc === 'IHNf') {
      // HNSW graph (probabilities, levels, offsets, neighbours, five ints), then its flat storage.
      c.skipVector(8);
      c.skipVector(4);
      c.skipVector(4);
      c.skipVector(8);
      c.skipVector(4);
      c.skip(5, 4);
      const storage = readFlat(c);
      if (storage.header.ntotal !== header.ntotal) throw new LayoutError('HNSW storage size differs from the header');
      return { ...base, ivf: undefined, runs: storage.runs, why: undefined, damaged: false };
    }
    return partial(undefined, `reading stored vectors of ${base.type === 'unknown' ? header.fourcc : base.type} is not supported`);
  } catch (err) {
    if (err instanceof LayoutError) return partial(ivfSeen, err.message, err.damaged);
    throw err;
  }
}

/**
 * File offset of an IVF index's nprobe (a uint64 right after nlist, which follows the
 * header): where a rebuild, an optimize or a test writes the nprobe searches use, since
 * faiss-node has no setter. Undefined for indexes without IVF lists.
 */
export function ivfNprobeOffset(layout: IndexLayout): number | undefined {
  return layout.ivf ? layout.header.end + 8 : undefined;
}

/** Which run holds position p (0 ≤ p < ntotal), given the runs' cumulative starts. */
export function locate(starts: readonly number[], p: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] as number) <= p) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * A flat index file image (what `IndexFlat::write` produces) around `count` vectors already
 * in `vectors` (float32 little-endian): the checker loads chunks of stored vectors this way,
 * with fromBuffer, instead of passing millions of numbers through faiss-node's number[] API.
 */
export function flatImageHeader(dimension: number, count: number, metric: 'l2' | 'inner_product'): Buffer {
  const h = Buffer.alloc(45);
  h.write(metric === 'l2' ? 'IxF2' : 'IxFI', 0, 'latin1');
  h.writeInt32LE(dimension, 4);
  h.writeBigInt64LE(BigInt(count), 8);
  h.writeBigInt64LE(1n << 20n, 16);
  h.writeBigInt64LE(1n << 20n, 24);
  h.writeUInt8(1, 32);
  h.writeInt32LE(metric === 'l2' ? 1 : 0, 33);
  h.writeBigUInt64LE(BigInt(count * dimension), 37);
  return h;
}
