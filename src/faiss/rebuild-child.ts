// Builds one new generation of a FAISS index from its source table, in a child process of
// the service (src/faiss/rebuild.ts says why a process). It never touches the live index or
// its map: it fills three temporary files the parent named, verifies them, and reports; the
// parent publishes them by rename. Killed at any point, it leaves only temporary files.
//
//   1. fetch: one binary COPY in one REPEATABLE READ snapshot (the server encodes in its
//      parallel workers when it has them; sql/faiss-rebuild.ts). Each vector goes, as
//      little-endian float32, into the vectors file, which is laid out as a flat index
//      image (format.ts flatImageHeader; the header is written last), and its row id into
//      the id map. A reservoir keeps a uniform training sample in memory.
//   2. train on the sample (types that need it), 3. add the vectors file back in batches,
//   4. write the index (FAISS writes the file the child created itself, so the path is
//      known to open; a failure inside FAISS's writer aborts this process only), set nprobe
//      for IVF, fsync,
//   5. verify: FAISS loads the file, ntotal equals the rows, and recall@10 of a sample of
//      rows against exact search (the vectors file loaded as a flat index) meets the floor;
//      an IVF index's nprobe is doubled until it does (or reaches nlist).
//   6. the id map's header gets the count and the SHA-256 of the final index file; fsync.
//
// faiss-node aborts the process on FAISS exceptions outside read/fromBuffer/fromFactory
// (scripts/faiss-shim/NOTES.md), so every call is guarded: train only with at least as many
// points as the descriptor's clusters, add only when trained, search only a trained,
// non-empty index with 0 < k ≤ ntotal and whole vectors.
import { closeSync, fchmodSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { setPriority } from 'node:os';
import faiss from 'faiss-node';
import type { Index, MetricType } from 'faiss-node';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { createHash } from 'node:crypto';
import { minTrainingPoints } from './factory.ts';
import { fileReader, flatImageHeader, ivfNprobeOffset, readLayout } from './format.ts';
import { encodeIdsHeader, IDS_HEADER_BYTES } from './ids.ts';
import { RECALL_MARGIN, type BuildJob, type BuildMessage, type BuildStage, type BuildStats } from './rebuild-protocol.ts';
import { BEGIN_READ, COMMIT, copyRebuildRows, SET_LOCAL_IDLE_TIMEOUT, SET_LOCAL_PARALLEL_READ } from '../sql/faiss-rebuild.ts';
import { CopyBinaryReader, type TupleView } from './copy-binary.ts';
import { prng, samplePositions } from '../util/random.ts';
import { collect, neighboursOf, recallOf } from './exact.ts';

const FLAT_HEADER_BYTES = 45;
const FLOAT4_OID = 700;

function send(msg: BuildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

/** One message per batch: cheap next to the batch, and the parent (and tests) always see where the build is. */
function progress(stage: BuildStage, rows: number): void {
  void send({ kind: 'progress', stage, rows });
}

let garbage = 0;
const GC_EVERY = 32 * 1048576;
/**
 * A full collection once every 32 MB of garbage made. The child's live heap is
 * small, but every vector passes through it as a chunk of the COPY stream (external
 * Buffers V8 does not count against its heap), and V8 lets the process grow by hundreds of
 * MB before it collects on its own. A full GC of a small heap takes milliseconds.
 */
function churned(bytes: number): void {
  garbage += bytes;
  if (garbage < GC_EVERY) return;
  garbage = 0;
  (globalThis as { gc?: () => void }).gc?.();
}

function writeAll(fd: number, b: Buffer | Uint8Array, position?: number): void {
  let done = 0;
  while (done < b.length) {
    const n = writeSync(fd, b, done, b.length - done, position === undefined ? null : position + done);
    if (n <= 0) throw new Error('short write');
    done += n;
  }
}

function readAll(fd: number, b: Buffer, position: number): void {
  let done = 0;
  while (done < b.length) {
    const n = readSync(fd, b, done, b.length - done, position + done);
    if (n <= 0) throw new Error(`short read at ${position + done}`);
    done += n;
  }
}

function peakRss(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+)\s*kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** An IVF index's nlist and nprobe, and where the nprobe is in the file (format.ts); undefined for other types. */
function ivfOf(fd: number): { nlist: number; nprobe: number; at: number } | undefined {
  const layout = readLayout(fileReader(fd, fstatSync(fd).size));
  const at = ivfNprobeOffset(layout);
  return layout.ivf && at !== undefined ? { ...layout.ivf, at } : undefined;
}

/**
 * add() and train() of the faiss-node that scripts/build-faiss-node.sh builds: they take a
 * Float32Array and FAISS reads it in place (scripts/faiss-shim/float32.patch). Stock 0.5.1's
 * number[] path copies element by element; it was most of a build's time and memory.
 */
interface Float32Taking {
  add(x: Float32Array): void;
  train(x: Float32Array): void;
}
function float32(index: Index): Float32Taking {
  return index as unknown as Float32Taking;
}
function requireFloat32Addon(): void {
  const probe = new faiss.IndexFlatL2(2);
  try {
    float32(probe).add(new Float32Array([1, 2]));
  } catch {
    // stock faiss-node throws a TypeError here, before FAISS sees anything
  }
  if (probe.ntotal() !== 1) throw new Error('this faiss-node build does not take a Float32Array (scripts/faiss-shim/float32.patch); run npm run setup');
}

/** What the phases share: the job, the open files, what each phase leaves for the next, and the figures. */
interface Build {
  readonly job: BuildJob;
  readonly rnd: () => number;
  readonly metricType: MetricType;
  /** The vectors spool (a flat index image, read back by add and verify) and the id map. */
  readonly vecFd: number;
  readonly idsFd: number;
  readonly t0: number;
  readonly seconds: BuildStats['seconds'];
  readonly memory: BuildStats['peakRssByPhase'];
  /** Usable rows so far, and their dimension (0 until the first usable row sets it). */
  rows: number;
  dim: number;
  skipped: number;
  skippedIds: string[];
  /** Created empty by the first usable row; dropped once written. */
  index: Index | undefined;
  needsTraining: boolean;
  /** The training sample (reservoir) and how many vectors it may hold. */
  sampleCap: number;
  reservoir: Float32Array | undefined;
  trainVectors: number;
  /** The batch being fetched: its vectors, its ids (int64 little-endian) and how many rows it holds. */
  batch: { floats: Float32Array; ids: Buffer; n: number };
}

type Phase = Exclude<keyof BuildStats['seconds'], 'total'>;

/** A phase's seconds since `since` and the peak memory at its end. */
function phaseDone(b: Build, phase: Phase, since: number): void {
  b.seconds[phase] = (performance.now() - since) / 1000;
  b.memory[phase] = peakRss();
}

/** Files first: a path that cannot be created fails here, before any work. */
function start(job: BuildJob, t0: number, memory: BuildStats['peakRssByPhase']): Build {
  const vecFd = openSync(job.files.vectors, 'wx+', 0o600);
  const idsFd = openSync(job.files.ids, 'wx', job.mode);
  const idxFd = openSync(job.files.index, 'wx', job.mode);
  // Exactly the live file's mode, whatever the umask.
  fchmodSync(idsFd, job.mode);
  fchmodSync(idxFd, job.mode);
  closeSync(idxFd);
  return {
    job,
    rnd: prng(job.seed),
    metricType: job.metric === 'l2' ? faiss.MetricType.METRIC_L2 : faiss.MetricType.METRIC_INNER_PRODUCT,
    vecFd,
    idsFd,
    t0,
    seconds: { fetch: 0, train: 0, add: 0, write: 0, verify: 0, total: 0 },
    memory,
    rows: 0,
    dim: 0,
    skipped: 0,
    skippedIds: [],
    index: undefined,
    needsTraining: false,
    sampleCap: 0,
    reservoir: undefined,
    trainVectors: 0,
    batch: { floats: new Float32Array(0), ids: Buffer.alloc(job.batchSize * 8), n: 0 },
  };
}

// 1. fetch --------------------------------------------------------------------------

async function fetchRows(b: Build): Promise<void> {
  const { job } = b;
  progress('connecting', 0);
  const client = new pg.Client({ connectionString: job.url, application_name: 'housekeeper-faiss-rebuild' });
  client.on('error', () => {}); // a broken connection fails the query in flight
  await client.connect();
  try {
    await client.query(BEGIN_READ);
    await client.query(SET_LOCAL_IDLE_TIMEOUT);
    for (const sql of SET_LOCAL_PARALLEL_READ) await client.query(sql);
    // Placeholders, written at the files' current offsets; the real headers go in last.
    writeAll(b.vecFd, Buffer.alloc(FLAT_HEADER_BYTES));
    writeAll(b.idsFd, Buffer.alloc(IDS_HEADER_BYTES));
    progress('fetching', 0);
    // One COPY in the snapshot: the server streams, the socket's flow control paces it
    // while a chunk is decoded and spooled, so memory stays at a chunk plus a batch.
    const reader = new CopyBinaryReader(2);
    const take = (t: TupleView): void => takeRow(b, t);
    const stream = client.query(copyTo(copyRebuildRows((name) => client.escapeIdentifier(name), job.source)));
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      reader.feed(chunk, take);
      churned(chunk.length);
    }
    reader.end();
    flushBatch(b);
    await client.query(COMMIT);
  } finally {
    await client.end().catch(() => {});
  }
  phaseDone(b, 'fetch', b.t0);
  if (b.rows === 0) throw new Error('the source has no rows with a usable vector: refusing to publish an empty index');
  // The vectors file becomes a loadable flat index: the header, with the count, goes in last.
  writeAll(b.vecFd, flatImageHeader(b.dim, b.rows, job.metric), 0);
  b.batch.floats = new Float32Array(0);
}

/** One COPY row (id int8, vector real[]): into the batch and the sample, or counted as skipped. */
function takeRow(b: Build, t: TupleView): void {
  const d = t.data; // big-endian reads
  const idLen = t.length[0] as number;
  const idAt = t.start[0] as number;
  const vLen = t.length[1] as number;
  const p0 = t.start[1] as number;
  // PostgreSQL's binary array: ndim, has-nulls flag, element type, then per
  // dimension (length, lower bound), then per element (byte length, value).
  const ok = vLen >= 20 && d.getInt32(p0) === 1 && d.getInt32(p0 + 4) === 0 && d.getUint32(p0 + 8) === FLOAT4_OID;
  const len = ok ? d.getInt32(p0 + 12) : -1;
  if (b.dim === 0 && ok && len > 0) firstRow(b, len);
  const dim = b.dim;
  const floats = b.batch.floats;
  // A NULL id (a view can have one) cannot be mapped: an unusable row like a bad vector.
  let good = ok && len === dim && vLen === 20 + 8 * dim && idLen === 8;
  const base = b.batch.n * dim;
  for (let i = 0, p = p0 + 20; good && i < dim; i++, p += 8) {
    const v = d.getFloat32(p + 4);
    if (d.getInt32(p) !== 4 || !Number.isFinite(v)) good = false;
    else floats[base + i] = v;
  }
  if (!good) return skipRow(b, idLen === 8 ? d.getBigInt64(idAt).toString() : undefined);
  // int8 big-endian in, int64 little-endian out: the id map's layout (ids.ts).
  b.batch.ids.writeBigInt64LE(d.getBigInt64(idAt), b.batch.n * 8);
  sampleRow(b, floats.subarray(base, base + dim));
  b.rows++;
  b.batch.n++;
  if (b.batch.n === b.job.batchSize) flushBatch(b);
}

/** The first usable row sets the dimension; the empty index says whether it trains. */
function firstRow(b: Build, dim: number): void {
  const { job } = b;
  b.dim = dim;
  b.index = faiss.Index.fromFactory(dim, job.factory, b.metricType);
  b.needsTraining = !b.index.isTrained();
  b.batch.floats = new Float32Array(job.batchSize * dim);
  b.sampleCap = b.needsTraining ? job.trainSize : 0;
  // Grown as rows arrive (doubling, up to the cap): a small table never pays for the cap.
  b.reservoir = new Float32Array(Math.min(b.sampleCap, 4096) * dim);
}

/** An unusable row: counted, its id kept for the log; past max_skipped_rows the build fails. */
function skipRow(b: Build, id: string | undefined): void {
  const { job, dim } = b;
  b.skipped++;
  if (b.skippedIds.length < 10) b.skippedIds.push(id ?? 'NULL');
  if (b.skipped > job.maxSkipped) {
    throw new Error(
      `row ${id ?? '(NULL id)'} has no usable vector or id (${dim === 0 ? 'not a one-dimensional real array' : `expected ${dim} finite elements`}); ` +
        `${b.skipped} such rows, max_skipped_rows is ${job.maxSkipped}`,
    );
  }
}

/** Reservoir sampling (algorithm R): every row is in the sample with equal chance. */
function sampleRow(b: Build, vector: Float32Array): void {
  const { dim, rows, sampleCap } = b;
  const slot = rows < sampleCap ? rows : Math.floor(b.rnd() * (rows + 1));
  if (slot >= sampleCap) return;
  let res = b.reservoir as Float32Array;
  if ((slot + 1) * dim > res.length) {
    const grown = new Float32Array(Math.min(sampleCap, Math.max(slot + 1, (res.length / dim) * 2)) * dim);
    grown.set(res);
    b.reservoir = res = grown;
  }
  res.set(vector, slot * dim);
}

function flushBatch(b: Build): void {
  const { batch, dim } = b;
  if (batch.n === 0) return;
  writeAll(b.vecFd, new Uint8Array(batch.floats.buffer, 0, batch.n * dim * 4));
  writeAll(b.idsFd, batch.ids.subarray(0, batch.n * 8));
  batch.n = 0;
  progress('fetching', b.rows);
}

// 2. train --------------------------------------------------------------------------

function train(b: Build, index: Index): void {
  const { job, rows, dim } = b;
  const t = performance.now();
  if (b.needsTraining) {
    b.trainVectors = Math.min(rows, b.sampleCap);
    const need = minTrainingPoints(job.factory);
    if (b.trainVectors < need) {
      throw new Error(`${job.factory} needs at least ${need} training vectors; the source has ${rows} rows and the sample is ${b.trainVectors}`);
    }
    progress('training', rows);
    float32(index).train((b.reservoir as Float32Array).subarray(0, b.trainVectors * dim));
    if (!index.isTrained()) throw new Error('the index is still untrained after train()');
  }
  b.reservoir = undefined;
  phaseDone(b, 'train', t);
}

// 3. add ----------------------------------------------------------------------------

/** The vectors file back into the index, a batch at a time. */
function addAll(b: Build, index: Index): void {
  const { job, rows, dim } = b;
  const t = performance.now();
  const buf = Buffer.allocUnsafeSlow(job.batchSize * dim * 4);
  const floats = new Float32Array(buf.buffer, buf.byteOffset, job.batchSize * dim);
  for (let done = 0; done < rows; ) {
    const n = Math.min(job.batchSize, rows - done);
    readAll(b.vecFd, buf.subarray(0, n * dim * 4), FLAT_HEADER_BYTES + done * dim * 4);
    float32(index).add(floats.subarray(0, n * dim));
    done += n;
    progress('adding', done);
  }
  if (index.ntotal() !== rows) throw new Error(`the index holds ${index.ntotal()} vectors after adding ${rows}`);
  phaseDone(b, 'add', t);
}

// 4. write --------------------------------------------------------------------------

type Ivf = NonNullable<ReturnType<typeof ivfOf>>;

function writeNprobe(idx: number, ivf: Ivf): void {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(BigInt(ivf.nprobe));
  writeAll(idx, buf, ivf.at);
}

/** FAISS writes the file; the index is dropped (its memory with it). Returns the file, open. */
async function writeIndex(b: Build, index: Index): Promise<number> {
  progress('writing', b.rows);
  index.write(b.job.files.index);
  b.index = undefined;
  await collect();
  return openSync(b.job.files.index, 'r+');
}

/** An IVF index gets the job's nprobe (within 1..nlist) written into its file. */
function setNprobe(b: Build, idx: number): Ivf | undefined {
  const ivf = ivfOf(idx);
  if (ivf) {
    ivf.nprobe = Math.max(1, Math.min(b.job.nprobe, ivf.nlist));
    writeNprobe(idx, ivf);
  }
  return ivf;
}

// 5. verify -------------------------------------------------------------------------

interface Verified {
  recall: number;
  recallQueries: number;
  k: number;
  nprobeRequested: number | undefined;
  indexBytes: number;
}

async function verify(b: Build, idx: number, ivf: Ivf | undefined): Promise<Verified> {
  const { job, rows, dim } = b;
  const t = performance.now();
  progress('verifying', rows);
  const k = Math.min(10, rows);
  const positions = samplePositions(rows, Math.min(job.recallSample, rows), b.rnd);
  const nq = positions.length;
  const queries = new Array<number>(nq * dim);
  const one = Buffer.alloc(dim * 4);
  positions.forEach((p, q) => {
    readAll(b.vecFd, one, FLAT_HEADER_BYTES + p * dim * 4);
    for (let i = 0; i < dim; i++) queries[q * dim + i] = one.readFloatLE(i * 4);
  });
  // The vectors file is a flat index image: loaded whole, it gives the exact neighbours
  // (ids = positions = the new index's labels). Scanning it a chunk at a time (exact.ts,
  // as the check does) was tried: 0.08 s slower and no lower peak.
  let flat: Index | undefined = faiss.Index.read(job.files.vectors);
  if (flat.ntotal() !== rows || flat.getDimension() !== dim) throw new Error('the vectors file does not load as written');
  const exact = neighboursOf(flat.search(queries, k), nq, k);
  flat = undefined;
  await collect();
  const measure = (): number => {
    const loaded = faiss.Index.read(job.files.index);
    if (loaded.ntotal() !== rows) throw new Error(`the written index holds ${loaded.ntotal()} vectors, expected ${rows}`);
    if (loaded.getDimension() !== dim || !loaded.isTrained()) throw new Error('the written index does not load as built');
    return recallOf(exact, loaded.search(queries, k), k, job.metric);
  };
  let recall = measure();
  await collect();
  // IVF: raise nprobe (doubling) until the recall meets the floor with a margin for the
  // sample (verify and the collector measure on other samples: ±0.01 at 1000 hits), or
  // every list is searched. Publishing needs the floor itself.
  let nprobeRequested: number | undefined;
  while (ivf && recall < Math.min(1, job.recallFloor + RECALL_MARGIN) && ivf.nprobe < ivf.nlist) {
    nprobeRequested ??= ivf.nprobe;
    ivf.nprobe = Math.min(ivf.nlist, ivf.nprobe * 2);
    writeNprobe(idx, ivf);
    recall = measure();
    await collect();
  }
  if (recall < job.recallFloor) {
    throw new Error(`recall@${k} of the new index is ${recall.toFixed(3)}${ivf ? ` at nprobe ${ivf.nprobe}` : ''}, below the floor ${job.recallFloor}: not published`);
  }
  fsyncSync(idx);
  const indexBytes = fstatSync(idx).size;
  phaseDone(b, 'verify', t);
  return { recall, recallQueries: nq, k, nprobeRequested, indexBytes };
}

// 6. the id map's header: count and the final index file's hash ------------------------

function sealIdMap(b: Build, idx: number, indexBytes: number): string {
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(4 << 20);
  for (let off = 0; off < indexBytes; ) {
    const n = readSync(idx, chunk, 0, Math.min(chunk.length, indexBytes - off), off);
    if (n <= 0) throw new Error('short read of the written index');
    hash.update(chunk.subarray(0, n));
    off += n;
  }
  const indexSha256 = hash.digest('hex');
  writeAll(b.idsFd, encodeIdsHeader({ count: b.rows, indexSize: indexBytes, indexSha256 }), 0);
  fsyncSync(b.idsFd);
  return indexSha256;
}

async function build(job: BuildJob): Promise<BuildStats> {
  const t0 = performance.now();
  const memory: BuildStats['peakRssByPhase'] = { start: peakRss() };
  requireFloat32Addon();
  const b = start(job, t0, memory);
  try {
    await fetchRows(b);
    const index = b.index;
    if (!index) throw new Error('no index was created');
    train(b, index);
    addAll(b, index);
    const tWrite = performance.now();
    const idx = await writeIndex(b, index);
    try {
      const ivf = setNprobe(b, idx);
      phaseDone(b, 'write', tWrite);
      const verified = await verify(b, idx, ivf);
      const indexSha256 = sealIdMap(b, idx, verified.indexBytes);
      b.seconds.total = (performance.now() - t0) / 1000;
      return {
        rows: b.rows,
        dimension: b.dim,
        skipped: b.skipped,
        skippedIds: b.skippedIds,
        trained: b.needsTraining,
        trainVectors: b.trainVectors,
        fourcc: readFourcc(idx),
        nlist: ivf?.nlist,
        nprobe: ivf?.nprobe,
        ...verified,
        indexSha256,
        seconds: b.seconds,
        peakRssBytes: peakRss(),
        peakRssByPhase: memory,
      };
    } finally {
      closeSync(idx);
    }
  } finally {
    closeSync(b.vecFd);
    closeSync(b.idsFd);
  }
}

function readFourcc(fd: number): string {
  const b = Buffer.alloc(4);
  readSync(fd, b, 0, 4, 0);
  return b.toString('latin1');
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? '').slice(0, 500);
}

// The parent went away (service stopped or crashed): nothing would publish the result.
process.on('disconnect', () => process.exit(0));
process.once('message', (raw: unknown) => {
  void (async () => {
    const job = raw as BuildJob;
    try {
      const stats = await build(job);
      await send({ kind: 'done', stats });
    } catch (err) {
      // Never echo the connection string: pg's errors do not hold it, but be sure.
      await send({ kind: 'failed', message: firstLine(err).split(job.url).join('<source url>') });
    }
    process.exit(0);
  })();
});
try {
  // Lowest fair share as well as SCHED_IDLE (when the parent could set it): the service's
  // event loop must win every contest for a CPU.
  setPriority(19);
} catch {
  // not permitted: SCHED_IDLE and the thread limits still apply
}
await send({ kind: 'ready' });
