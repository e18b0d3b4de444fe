// FAISS benchmark: does a 1M-vector index make /metrics slow?
//
// One 1M×128 IVF-Flat index (IVF1024, nprobe 16 in the file) is built once with faiss-node
// and cached under /dev/shm (or os.tmpdir()), keyed by its parameters, so reruns start at
// once. housekeeper runs as its own process (scripts/node.sh src/main.ts, as `npm start`),
// in interleaved phases of equal length: with no index configured, then with the index and
// check_interval 1s, so a check (load 512 MB, 20 probes, recall@10 of 100 own vectors
// against exact search over all 1M) is in progress for nearly all of the phase, and so on,
// ending without the index. Interleaving gives both the same background load. Each phase is
// sequential closed-loop scrapes, as Prometheus 2.42 sends them. The figures compared:
// /metrics latency, median and p99, of the scrapes made while a check was running
// (faiss_index_check_running 1 in the answer) against the scrapes with no index configured.
// Target: p99 with the index at most 1.5× the no-index p99.
//
// Results go to bench/results/faiss.md and stdout. Knobs (environment):
//   HOUSEKEEPER_BENCH_FAISS_VECTORS (default 1000000), HOUSEKEEPER_BENCH_FAISS_ROUNDS (phases
//   with the index, default 3), HOUSEKEEPER_BENCH_FAISS_PHASE_SECONDS (default 8),
//   HOUSEKEEPER_BENCH_FAISS_DIR (where the index is cached).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statfsSync, statSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import faiss from 'faiss-node';
import { freePort } from '../test/harness/ports.ts';
import { ManagedProcess, cleanEnv, makeTempDir, removeTempDir, sleep, waitFor, withPortRetry, writeOwnedFile } from '../test/harness/proc.ts';
import { benchLog, f2, intEnv, quantile, resultsFile, ROOT, scrape } from './lib.ts';

const RESULTS = resultsFile('faiss');

const VECTORS = intEnv('HOUSEKEEPER_BENCH_FAISS_VECTORS', 1_000_000, 10_000, 5_000_000);
const DIM = 128;
const NLIST = 1024;
const NPROBE = 16;
const TRAIN = 64 * NLIST; // 64 points per centroid: FAISS wants at least 39
const SEED = 42;
const PHASE_SECONDS = intEnv('HOUSEKEEPER_BENCH_FAISS_PHASE_SECONDS', 8, 2, 120);
const ROUNDS = intEnv('HOUSEKEEPER_BENCH_FAISS_ROUNDS', 3, 1, 20);
const WARMUP = 50;
const PHASE_LIMIT_MS = 10 * 60_000; // every loop below is bounded
const CACHE_REV = 2; // bump when the data or build below changes


const log = benchLog('faiss');

// ---------------------------------------------------------------------------------------
// The index

function cacheDir(): string {
  const fromEnv = process.env['HOUSEKEEPER_BENCH_FAISS_DIR'];
  if (fromEnv) return fromEnv;
  const need = VECTORS * DIM * 4 * 1.2 + 1e9;
  try {
    const s = statfsSync('/dev/shm');
    if (s.bavail * s.bsize > need) return path.join('/dev/shm', `housekeeper-bench-${process.getuid?.() ?? 0}`);
  } catch {
    // no /dev/shm
  }
  return path.join(os.tmpdir(), `housekeeper-bench-${process.getuid?.() ?? 0}`);
}

/** Clustered data, closer to real embeddings than uniform noise: 4096 centres, uniform noise around them as wide as their spread. */
function batchOfVectors(start: number, count: number): number[] {
  const centre = (c: number, j: number): number => {
    const x = Math.sin((c + 1) * 12.9898 + (j + 1) * 78.233 + SEED) * 43758.5453;
    return x - Math.floor(x);
  };
  let s = (SEED * 2654435761 + start) >>> 0;
  const rnd = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Array<number>(count * DIM);
  for (let i = 0; i < count; i++) {
    const c = Math.floor(rnd() * 4096);
    for (let j = 0; j < DIM; j++) out[i * DIM + j] = centre(c, j) + (rnd() - 0.5) * 1.0;
  }
  return out;
}

interface Built {
  file: string;
  cached: boolean;
  seconds: { train: number; add: number; write: number };
}

/** Builds the index unless a complete one with the same parameters is cached. */
function ensureIndex(): Built {
  const dir = cacheDir();
  mkdirSync(dir, { recursive: true });
  const name = `faiss-${VECTORS}x${DIM}-ivf${NLIST}-nprobe${NPROBE}-seed${SEED}-r${CACHE_REV}`;
  const file = path.join(dir, `${name}.index`);
  const done = `${file}.built.json`;
  if (existsSync(file) && existsSync(done)) {
    const meta = JSON.parse(readFileSync(done, 'utf8')) as Built['seconds'] & { size: number };
    if (statSync(file).size === meta.size) return { file, cached: true, seconds: meta };
  }
  for (const f of readdirSync(dir)) if (f.startsWith(`${name}.index.tmp`)) rmSync(path.join(dir, f), { force: true });
  log(`building ${VECTORS}×${DIM} IVF${NLIST},Flat in ${dir} (takes a while; cached for reruns)`);
  const t0 = performance.now();
  const index = faiss.Index.fromFactory(DIM, `IVF${NLIST},Flat`, faiss.MetricType.METRIC_L2);
  // Guards against FAISS's aborting paths: enough training points, trained before add.
  const trainOn = Math.min(VECTORS, TRAIN);
  if (trainOn < NLIST) throw new Error('not enough vectors to train');
  index.train(batchOfVectors(0, trainOn));
  if (!index.isTrained()) throw new Error('IVF index did not train');
  const t1 = performance.now();
  const BATCH = 25_000;
  for (let i = 0; i < VECTORS; i += BATCH) {
    index.add(batchOfVectors(i, Math.min(BATCH, VECTORS - i)));
    if ((i / BATCH) % 8 === 0) log(`  added ${i + BATCH} of ${VECTORS}`);
  }
  const t2 = performance.now();
  // write() aborts the process when the path cannot be opened: the directory exists (above).
  const tmp = `${file}.tmp-${process.pid}`;
  index.write(tmp);
  // nprobe lives in the IVF-Flat header at byte 45 (faiss-node has no setter).
  const fd = openSync(tmp, 'r+');
  const nprobe = Buffer.alloc(8);
  nprobe.writeBigUInt64LE(BigInt(NPROBE));
  writeSync(fd, nprobe, 0, 8, 45);
  closeSync(fd);
  renameSync(tmp, file);
  const t3 = performance.now();
  const seconds = { train: (t1 - t0) / 1000, add: (t2 - t1) / 1000, write: (t3 - t2) / 1000 };
  writeFileSync(done, JSON.stringify({ ...seconds, size: statSync(file).size }));
  return { file, cached: false, seconds };
}

// ---------------------------------------------------------------------------------------
// The service and its scrapes

interface Service {
  url: string;
  pid: number;
  proc: ManagedProcess;
}

async function startHousekeeper(dir: string, name: string, faissYaml: string): Promise<Service> {
  return withPortRetry(freePort, async (port) => {
    const config = path.join(dir, `${name}.yml`);
    writeOwnedFile(config, [`server: { host: 127.0.0.1, port: ${port} }`, 'log: { level: warn }', faissYaml, ''].join('\n'), undefined);
    const proc = new ManagedProcess({
      name: `housekeeper (${name}) :${port}`,
      cmd: 'bash',
      args: [path.join(ROOT, 'scripts', 'node.sh'), path.join(ROOT, 'src', 'main.ts')],
      env: cleanEnv({ HOUSEKEEPER_CONFIG: config }),
      logFile: path.join(dir, `${name}.log`),
      asOwner: undefined,
      stopSignal: 'SIGTERM',
      exitSignal: 'SIGTERM',
      cwd: ROOT,
    });
    const url = `http://127.0.0.1:${port}/metrics`;
    try {
      await waitFor(name, proc, async () => ((await fetch(url, { signal: AbortSignal.timeout(5_000) })).ok ? true : undefined), { timeoutMs: 60_000, intervalMs: 100 });
    } catch (err) {
      await proc.stop(5_000);
      throw err;
    }
    return { url, pid: proc.pid, proc };
  });
}

function sample(body: string, name: string): number | undefined {
  const m = new RegExp(`^${name}\\{[^}]*target="bench"[^}]*\\} (\\S+)`, 'm').exec(body);
  return m ? Number(m[1]) : undefined;
}

function rssMb(pid: number): number {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? 0 : Number(kb) / 1024;
  } catch {
    return 0; // gone
  }
}

/** Direct children of pid (the check process), from /proc. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

interface Phase {
  all: number[];
  during: number[];
  outside: number[];
  checks: number;
  maxChildRssMb: number;
  serviceRssMb: number;
  last: string;
}

/** Sequential closed-loop scrapes for `seconds` (bounded by it). */
async function phase(svc: Service, seconds: number): Promise<Phase> {
  const p: Phase = { all: [], during: [], outside: [], checks: 0, maxChildRssMb: 0, serviceRssMb: 0, last: '' };
  const end = performance.now() + seconds * 1000;
  let lastCheck: number | undefined;
  let i = 0;
  while (performance.now() < end) {
    const { ms, body } = await scrape(svc.url);
    p.all.push(ms);
    if (sample(body, 'faiss_index_check_running') === 1) p.during.push(ms);
    else p.outside.push(ms);
    const ts = sample(body, 'faiss_index_check_timestamp_seconds');
    if (ts !== undefined && ts !== lastCheck) {
      if (lastCheck !== undefined) p.checks++;
      lastCheck = ts;
    }
    if (i++ % 20 === 0) for (const c of childrenOf(svc.pid)) p.maxChildRssMb = Math.max(p.maxChildRssMb, rssMb(c));
    p.last = body;
  }
  p.serviceRssMb = rssMb(svc.pid);
  return p;
}

// ---------------------------------------------------------------------------------------

export async function main(): Promise<void> {
  const loadStart = os.loadavg()[0]?.toFixed(2);
  const built = ensureIndex();
  const size = statSync(built.file).size;
  log(built.cached ? `using cached ${built.file}` : `built in ${f2(built.seconds.train + built.seconds.add + built.seconds.write)} s`);
  const dir = makeTempDir('hk-bench-faiss-', undefined);
  const services: Service[] = [];
  try {
    // Interleaved phases of equal length, so both see the same background load:
    // no index, with the index, no index, ..., no index. Each phase is its own service
    // process; the with-index one is measured only once its first check has completed.
    const indexYaml = `faiss:\n  - { name: bench, path: ${JSON.stringify(built.file)}, check_interval: 1s, recall_sample: 100 }`;
    const baselines: Phase[] = [];
    const withIndex: Phase[] = [];
    for (let round = 0; round <= ROUNDS; round++) {
      const a = await startHousekeeper(dir, `no-index-${round}`, 'faiss: []');
      services.push(a);
      for (let i = 0; i < WARMUP; i++) await scrape(a.url);
      log(`round ${round}: no index, ${PHASE_SECONDS} s`);
      baselines.push(await phase(a, PHASE_SECONDS));
      await a.proc.stop();
      if (round === ROUNDS) break;

      const b = await startHousekeeper(dir, `with-index-${round}`, indexYaml);
      services.push(b);
      const firstDeadline = Date.now() + PHASE_LIMIT_MS;
      let first = '';
      for (;;) {
        first = (await scrape(b.url)).body;
        if (sample(first, 'faiss_index_check_timestamp_seconds') !== undefined) break;
        if (Date.now() > firstDeadline) throw new Error('no check finished in time');
        await sleep(200);
      }
      if (sample(first, 'faiss_index_loadable') !== 1 || sample(first, 'faiss_index_vectors') !== VECTORS) {
        throw new Error(`the index did not check out: ${first.split('\n').filter((l) => l.startsWith('faiss_index')).join('; ')}`);
      }
      for (let i = 0; i < WARMUP; i++) await scrape(b.url);
      log(`round ${round}: with the index, ${PHASE_SECONDS} s`);
      withIndex.push(await phase(b, PHASE_SECONDS));
      await b.proc.stop();
    }
    const pool = (ps: Phase[], key: 'all' | 'during' | 'outside'): number[] => ps.flatMap((x) => x[key]);
    const b = {
      all: pool(withIndex, 'all'),
      during: pool(withIndex, 'during'),
      outside: pool(withIndex, 'outside'),
      checks: withIndex.reduce((n, x) => n + x.checks, 0),
      maxChildRssMb: Math.max(...withIndex.map((x) => x.maxChildRssMb)),
      serviceRssMb: Math.max(...withIndex.map((x) => x.serviceRssMb)),
      last: withIndex[withIndex.length - 1]?.last ?? '',
    };
    if (b.during.length < 100) throw new Error(`only ${b.during.length} scrapes were taken during a check`);
    const a1 = { serviceRssMb: Math.max(...baselines.map((x) => x.serviceRssMb)) };
    const baseline = pool(baselines, 'all');
    const r = {
      baseMedian: quantile(baseline, 0.5),
      baseP99: quantile(baseline, 0.99),
      duringMedian: quantile(b.during, 0.5),
      duringP99: quantile(b.during, 0.99),
      allMedian: quantile(b.all, 0.5),
      allP99: quantile(b.all, 0.99),
    };
    const ratio = r.duringP99 / r.baseP99;
    const m = (name: string): string => String(sample(b.last, name) ?? '—');
    const cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
    const lines = [
      `FAISS benchmark, ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; ${os.availableParallelism()} CPUs (${cpu}); Node ${process.version}; load average at the start ${loadStart}, at the end ${os.loadavg()[0]?.toFixed(2)}.`,
      '',
      `Index: ${VECTORS.toLocaleString('en')}×${DIM} IVF${NLIST},Flat (L2), nprobe ${NPROBE}, ${f2(size / 1048576)} MiB, ${built.cached ? 'cached from an earlier run' : 'built in this run'}: ` +
        `train ${f2(built.seconds.train)} s, add ${f2(built.seconds.add)} s, write ${f2(built.seconds.write)} s (faiss-node, number[] batches of 25k).`,
      `Config: check_interval 1s (a check starts at most every 2 s), recall_sample 100. Phases of ${PHASE_SECONDS} s of sequential closed-loop scrapes (Prometheus 2.42's headers, after ${WARMUP} warm-up scrapes), interleaved: no index, with the index, ... (${ROUNDS} with, ${ROUNDS + 1} without).`,
      '',
      '| /metrics latency | no index | with the 1M index, during a check | ratio | target | result |',
      '|---|---|---|---|---|---|',
      `| median | ${f2(r.baseMedian)} ms | ${f2(r.duringMedian)} ms | ${f2(r.duringMedian / r.baseMedian)} | — | info |`,
      `| p99 | ${f2(r.baseP99)} ms | ${f2(r.duringP99)} ms | ${f2(ratio)} | ≤ 1.5 | ${ratio <= 1.5 ? 'PASS' : 'MISS'} |`,
      '',
      'Details:',
      '',
      `- Per phase, median / p99 ms: no index ${baselines.map((x) => `${f2(quantile(x.all, 0.5))} / ${f2(quantile(x.all, 0.99))}`).join(', ')}; with the index (during checks) ${withIndex.map((x) => `${f2(quantile(x.during.length ? x.during : [0], 0.5))} / ${f2(quantile(x.during.length ? x.during : [0], 0.99))}`).join(', ')}.`,
      `- Scrapes: ${baseline.length} without an index; ${b.all.length} with it.`,
      `- With the index, all ${b.all.length} scrapes: ${f2(r.allMedian)} / ${f2(r.allP99)} ms; ${b.during.length} during a check, ${b.outside.length} between checks (${f2(quantile(b.outside.length ? b.outside : [0], 0.5))} / ${f2(quantile(b.outside.length ? b.outside : [0], 0.99))} ms); ${b.checks} checks completed during the with-index phases.`,
      `- Last check: ${m('faiss_index_check_duration_seconds')} s; recall@10 ${m('faiss_index_recall_at_10')} (${m('faiss_index_recall_queries')} queries); probe latency (median of 20 single queries) ${m('faiss_index_probe_latency_seconds')} s.`,
      `- Memory: the check process peaked at ${f2(b.maxChildRssMb)} MB RSS (sampled); the service stayed at ${f2(b.serviceRssMb)} MB (no index: ${f2(a1.serviceRssMb)} MB). The index is never loaded in the service.`,
      `- Command: \`bash scripts/node.sh bench/faiss.ts\` (or \`bash scripts/node.sh bench/run.ts faiss\` once wired in).`,
    ];
    const text = `${lines.join('\n')}\n`;
    mkdirSync(path.dirname(RESULTS), { recursive: true });
    writeFileSync(RESULTS, text);
    process.stdout.write(text);
  } finally {
    for (const s of services) await s.proc.stop();
    await removeTempDir(dir);
  }
}

if (import.meta.main) await main();
