// FAISS rebuild benchmark: faiss-rebuild against python3-faiss, and what a rebuild costs the
// service while it runs.
//
// Data: 100k × 128 float32 vectors, clustered (1000 centres, uniform noise around them),
// deterministic, in a Postgres 15 table (bigint id, real[] embedding) on loopback, and the
// same vectors as a raw float32 file for Python.
//
//  1. Wall time, interleaved rounds in one run: python3-faiss (Debian's, /usr/bin/python3,
//     bench/faiss-rebuild.py) trains IVF256,Flat on a 20k sample and adds the 100k from numpy
//     arrays; housekeeper's faiss-rebuild (called in this process, as the engine would) does
//     the same from the table: binary COPY, train on a 20k sample, add, write, verify,
//     publish. Target: rebuild wall ≤ 1.25 × python's train+add. The child's own phase
//     times come from the action's result. Beside it, for an end-to-end comparison,
//     python3-faiss reading the same table (psycopg2, binary COPY parsed by numpy in place),
//     then train, add and write_index, timed from process start to exit.
//  2. /metrics while a rebuild runs: housekeeper as its own process (scripts/node.sh
//     src/main.ts), the rebuild triggered by an alert through the webhook and the engine.
//     Sequential closed-loop scrapes with Prometheus's headers; idle phases and rebuild phases
//     interleaved; a scrape counts as "during" when the build child exists before and after
//     it. Target: p99 during ≤ 2 × idle p99.
//  3. Peak RSS of the build child (VmHWM, reported by the child itself) against 2 × the
//     index file's size + 150 MB.
//  4. Profile: faiss-node's train and add through number[] (stock 0.5.1's only path) and
//     through Float32Array (scripts/faiss-shim/float32.patch), in a process of its own.
//
// OPENBLAS_CORETYPE and the thread settings of the environment are left as they are for
// both sides. Knobs: HOUSEKEEPER_BENCH_REBUILD_VECTORS (100000), _ROUNDS (3), _IDLE_SECONDS (6).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { ActionContext } from '../src/actions/action.ts';
import { actions } from '../src/actions/index.ts';
import { parseConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { closeTargets, createTargets } from '../src/targets/index.ts';
import { prng } from '../src/util/random.ts';
import { startPostgres, type PgServer } from '../test/harness/postgres.ts';
import { freePort } from '../test/harness/ports.ts';
import { ManagedProcess, childPids, cleanEnv, waitFor, withPortRetry, writeOwnedFile } from '../test/harness/proc.ts';
import { benchLog, f2, intEnv, PROMETHEUS_HEADERS, quantile, resultsFile, ROOT, SCRAPE_TIMEOUT_MS } from './lib.ts';

const RESULTS = resultsFile('faiss-rebuild');
const PYTHON = '/usr/bin/python3'; // Debian's, with python3-faiss; a pyenv shim may shadow `python3`

const N = intEnv('HOUSEKEEPER_BENCH_REBUILD_VECTORS', 100_000, 10_000, 2_000_000);
const D = 128;
const NLIST = 256;
const FACTORY = `IVF${NLIST},Flat`;
const TRAIN = 20_000;
const ROUNDS = intEnv('HOUSEKEEPER_BENCH_REBUILD_ROUNDS', 3, 1, 10);
const IDLE_SECONDS = intEnv('HOUSEKEEPER_BENCH_REBUILD_IDLE_SECONDS', 6, 2, 60);
const TOKEN = 'bench-token-0123456789abcdef';
const PHASE_LIMIT_MS = intEnv('HOUSEKEEPER_BENCH_REBUILD_LIMIT_SECONDS', 600, 10, 3600) * 1000;

const log = benchLog('faiss-rebuild');
const mb = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MB`;

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Clustered vectors: 1000 centres in [0,1)^D, each vector a centre plus uniform noise of ±0.1. */
function vectors(): Float32Array {
  const rnd = prng(42);
  const centres = new Float32Array(1000 * D).map(() => rnd());
  const out = new Float32Array(N * D);
  for (let i = 0; i < N; i++) {
    const c = Math.floor(rnd() * 1000) * D;
    for (let j = 0; j < D; j++) out[i * D + j] = (centres[c + j] as number) + (rnd() - 0.5) * 0.2;
  }
  return out;
}

async function loadTable(url: string, x: Float32Array): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('CREATE TABLE bench_vectors (id bigint PRIMARY KEY, embedding real[] NOT NULL)');
    const per = 1000;
    for (let i = 0; i < N; i += per) {
      const n = Math.min(per, N - i);
      const values: string[] = [];
      const params: (number | string)[] = [];
      for (let r = 0; r < n; r++) {
        const row = i + r;
        // Float32 values printed shortest-exact: Postgres stores exactly these floats.
        params.push(row * 2 + 1, `{${Array.from(x.subarray(row * D, (row + 1) * D)).join(',')}}`);
        values.push(`($${2 * r + 1}, $${2 * r + 2}::real[])`);
      }
      await c.query(`INSERT INTO bench_vectors VALUES ${values.join(',')}`, params);
    }
    // Hint bits and the visibility map set now, so no round pays for them.
    await c.query('VACUUM (ANALYZE) bench_vectors');
  } finally {
    await c.end();
  }
}

interface PythonRun {
  train_seconds: number;
  add_seconds: number;
  total_seconds: number;
  threads: number;
  faiss_version: string;
  numpy_version: string;
}

async function python(file: string, seed: number): Promise<PythonRun> {
  const { stdout } = await promisify(execFile)(PYTHON, [path.join(ROOT, 'bench', 'faiss-rebuild.py'), 'arrays', file, String(N), String(D), FACTORY, String(TRAIN), String(seed)], {
    env: process.env,
    timeout: 600_000,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as PythonRun;
}

interface PythonPgRun extends PythonRun {
  fetch_seconds: number;
  write_seconds: number;
  rows: number;
  /** Process start to exit, as seen from here: interpreter, imports, connection included. */
  wall: number;
}

/** python3-faiss from the table; the URL (with its password) goes in the environment, not argv. */
async function pythonFromPostgres(url: string, out: string, seed: number): Promise<PythonPgRun> {
  const t0 = performance.now();
  const { stdout } = await promisify(execFile)(
    PYTHON,
    [path.join(ROOT, 'bench', 'faiss-rebuild.py'), 'postgres', 'env:HK_BENCH_PG_URL', 'bench_vectors', String(D), FACTORY, String(TRAIN), String(seed), out],
    { env: { ...process.env, HK_BENCH_PG_URL: url }, timeout: 600_000, maxBuffer: 1 << 20 },
  );
  const wall = (performance.now() - t0) / 1000;
  const r = JSON.parse(stdout.trim().split('\n').pop() as string) as PythonPgRun;
  if (r.rows !== N) throw new Error(`python read ${r.rows} rows, expected ${N}`);
  rmSync(out, { force: true });
  return { ...r, wall };
}

interface NodeRun {
  wall: number;
  details: Record<string, unknown>;
}

async function rebuild(ctx: ActionContext): Promise<NodeRun> {
  const a = actions.find((x) => x.name === 'faiss-rebuild');
  if (!a) throw new Error('faiss-rebuild is not registered');
  const p = { index: 'bench', factory: FACTORY, train_size: TRAIN };
  const t0 = performance.now();
  const r = await a.run(ctx, p, AbortSignal.timeout(PHASE_LIMIT_MS));
  const wall = (performance.now() - t0) / 1000;
  return { wall, details: r.details ?? {} };
}

// ---------------------------------------------------------------------------------------
// The service under load

interface Service {
  url: string;
  pid: number;
  proc: ManagedProcess;
}

async function startHousekeeper(dir: string, body: string): Promise<Service> {
  return withPortRetry(freePort, async (port) => {
    const config = path.join(dir, 'housekeeper.yml');
    writeOwnedFile(config, [`server: { host: 127.0.0.1, port: ${port} }`, 'log: { level: warn }', body, ''].join('\n'), undefined);
    const proc = new ManagedProcess({
      name: `housekeeper :${port}`,
      cmd: 'bash',
      args: [path.join(ROOT, 'scripts', 'node.sh'), path.join(ROOT, 'src', 'main.ts')],
      env: cleanEnv({ HOUSEKEEPER_CONFIG: config, HOUSEKEEPER_WEBHOOK_TOKEN: TOKEN }),
      logFile: path.join(dir, 'housekeeper.log'),
      asOwner: undefined,
      stopSignal: 'SIGTERM',
      exitSignal: 'SIGTERM',
      cwd: ROOT,
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor('housekeeper', proc, async () => ((await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).ok ? true : undefined), {
        timeoutMs: 60_000,
        intervalMs: 100,
      });
    } catch (err) {
      await proc.stop(5_000);
      throw err;
    }
    return { url, pid: proc.pid, proc };
  });
}

async function scrape(url: string): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${url}/metrics`, { headers: PROMETHEUS_HEADERS, signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
  await r.arrayBuffer();
  const ms = performance.now() - t0;
  if (!r.ok) throw new Error(`/metrics: HTTP ${r.status}`);
  return ms;
}

/** The build child of the service, if one runs (its command line names rebuild-child). */
function buildChild(pid: number): number | undefined {
  for (const c of childPids(pid)) {
    try {
      if (readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('rebuild-child')) return c;
    } catch {
      // gone
    }
  }
  return undefined;
}

async function remediations(url: string): Promise<Array<Record<string, unknown>>> {
  const r = await fetch(`${url}/api/remediations?action=faiss-rebuild`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(10_000) });
  if (!r.ok) throw new Error(`/api/remediations: HTTP ${r.status}`);
  return ((await r.json()) as { items: Array<Record<string, unknown>> }).items;
}

async function idlePhase(svc: Service, seconds: number): Promise<number[]> {
  const out: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) out.push(await scrape(svc.url));
  return out;
}

/** Alerts the service, scrapes until the rebuild is logged; returns the scrapes made while the build child ran. */
async function rebuildPhase(svc: Service, round: number): Promise<{ during: number[]; all: number[]; entry: Record<string, unknown>; peak: number }> {
  const startsAt = new Date(Date.UTC(2026, 0, 1, 0, round)).toISOString();
  const res = await fetch(`${svc.url}/hooks/alertmanager`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      version: '4',
      groupKey: '{}:{alertname="FaissRecallLow"}',
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'housekeeper',
      groupLabels: { alertname: 'FaissRecallLow' },
      commonLabels: {},
      commonAnnotations: {},
      externalURL: 'http://127.0.0.1:9093',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'FaissRecallLow', target: 'bench', remediation: 'faiss-rebuild' },
          annotations: {},
          startsAt,
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: '',
          fingerprint: `00000000000000${String(round).padStart(2, '0')}`,
        },
      ],
    }),
    signal: AbortSignal.timeout(30_000),
  });
  if (res.status !== 202) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
  const during: number[] = [];
  const all: number[] = [];
  const limit = performance.now() + PHASE_LIMIT_MS;
  let lastPoll = 0;
  let peak = 0;
  for (;;) {
    if (performance.now() > limit) throw new Error(`the rebuild did not finish in time; log: ${JSON.stringify(await remediations(svc.url)).slice(0, 2000)}`);
    const before = buildChild(svc.pid);
    const ms = await scrape(svc.url);
    all.push(ms);
    if (before !== undefined && buildChild(svc.pid) === before) {
      during.push(ms);
      peak = Math.max(peak, vmHwm(before));
    }
    if (performance.now() - lastPoll > 500) {
      lastPoll = performance.now();
      const done = (await remediations(svc.url)).find((e) => e['outcome'] !== 'running' && entryRound(e) === startsAt);
      if (done) return { during, all, entry: done, peak };
    }
  }
}

/** VmHWM of a process in bytes (0 when it is gone). */
function vmHwm(pid: number): number {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

function entryRound(e: Record<string, unknown>): string | undefined {
  const at = e['starts_at'];
  return typeof at === 'string' ? new Date(at).toISOString() : undefined;
}

// ---------------------------------------------------------------------------------------
// Profile: where faiss-node's time goes (bench/faiss-rebuild-profile.ts, in its own process)

interface Profile {
  takesFloat32: boolean;
  toArray?: number;
  toArrayInAdd?: number;
  train: number;
  add: number;
  flatAdd: number;
  peakRssBytes: number;
}

async function profile(rawFile: string, mode: 'number' | 'float32'): Promise<Profile> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [path.join(ROOT, 'bench', 'faiss-rebuild-profile.ts'), path.join(ROOT, 'node_modules', 'faiss-node'), rawFile, String(N), String(D), String(NLIST), String(TRAIN), mode],
    { env: process.env, timeout: 600_000, maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split('\n').pop() as string) as Profile;
}

// ---------------------------------------------------------------------------------------

export async function main(): Promise<void> {
  const loadStart = os.loadavg()[0]?.toFixed(2);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hk-bench-rebuild-'));
  let primary: PgServer | undefined;
  let svc: Service | undefined;
  try {
    primary = await startPostgres();
    const x = vectors();
    const rawFile = path.join(dir, 'vectors.f32');
    writeFileSync(rawFile, new Uint8Array(x.buffer));
    log(`loading ${N} × ${D} vectors into Postgres`);
    await loadTable(primary.url({ db: 'app' }), x);
    const indexPath = path.join(dir, 'bench.index');
    const faissYaml = `postgres:
  - { name: primary, url: "${primary.url({ db: 'app' })}" }
faiss:
  - name: bench
    path: ${indexPath}
    check_interval: 1h
    recall_floor: 0.9
    source: { target: primary, table: bench_vectors, id_column: id, vector_column: embedding }`;

    // 1. Wall time, interleaved.
    const config = parseConfig(faissYaml, path.join(dir, 'direct.yml'), {});
    const targets = createTargets(config, createLogger('warn'));
    const ctx: ActionContext = { targets, config, log: createLogger('warn') };
    const py: PythonRun[] = [];
    const pyPg: PythonPgRun[] = [];
    const hk: NodeRun[] = [];
    try {
      for (let r = 0; r < ROUNDS; r++) {
        log(`round ${r + 1}/${ROUNDS}: python3-faiss`);
        py.push(await python(rawFile, 1000 + r));
        log(`round ${r + 1}/${ROUNDS}: python3-faiss from the table`);
        pyPg.push(await pythonFromPostgres(primary.url({ db: 'app' }), path.join(dir, 'python.index'), 1000 + r));
        log(`round ${r + 1}/${ROUNDS}: faiss-rebuild`);
        hk.push(await rebuild(ctx));
      }
    } finally {
      await closeTargets(targets);
    }
    const indexBytes = Number(hk.at(-1)?.details['file_size_bytes'] ?? 0);

    // 2. /metrics during rebuilds through the service.
    const stateDb = new pg.Client({ connectionString: primary.url({ db: 'app' }) });
    await stateDb.connect();
    await stateDb.query('CREATE DATABASE hk_state');
    await stateDb.end();
    const rulesDir = path.join(dir, 'rules');
    mkdirSync(rulesDir);
    writeFileSync(
      path.join(rulesDir, 'bench.yml'),
      `rules:
  - name: rebuild-on-low-recall
    matchers: ['alertname="FaissRecallLow"']
    action: faiss-rebuild
    params: { index: "{{ $labels.target }}", factory: "${FACTORY}", train_size: ${TRAIN} }
    cooldown: 0s
    max_attempts: 1
    allow_outside_windows: true
`,
    );
    svc = await startHousekeeper(dir, `${faissYaml}\nstate: { url: "${primary.url({ db: 'hk_state' })}" }\nremediation: { rules_dir: ${rulesDir} }`);
    log('service up; warming up');
    for (let i = 0; i < 50; i++) await scrape(svc.url);
    const idle: number[] = [];
    const during: number[] = [];
    const entries: Record<string, unknown>[] = [];
    const peaks: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      log(`round ${r + 1}/${ROUNDS}: idle ${IDLE_SECONDS} s, then a rebuild through the webhook`);
      idle.push(...(await idlePhase(svc, IDLE_SECONDS)));
      const ph = await rebuildPhase(svc, r);
      during.push(...ph.during);
      entries.push(ph.entry);
      peaks.push(ph.peak);
    }
    idle.push(...(await idlePhase(svc, IDLE_SECONDS)));

    // 4. Profile.
    log('profiling faiss-node: number[], then Float32Array');
    const prof = await profile(rawFile, 'number');
    const f32 = await profile(rawFile, 'float32');

    // Report.
    const pyTotal = median(py.map((p) => p.total_seconds));
    const pyTrain = median(py.map((p) => p.train_seconds));
    const pyAdd = median(py.map((p) => p.add_seconds));
    const hkWall = median(hk.map((h) => h.wall));
    const sec = (k: string): number => median(hk.map((h) => Number((h.details['seconds'] as Record<string, number>)[k])));
    const peak = Math.max(...hk.map((h) => Number(h.details['child_peak_rss_bytes'] ?? 0)), ...peaks);
    const budget = 2 * indexBytes + 150 * 1048576;
    const idleP99 = quantile(idle, 0.99);
    const duringP99 = quantile(during, 0.99);
    const ratio = hkWall / pyTotal;
    const buildRatio = (sec('train') + sec('add')) / pyTotal;
    const pyPgWall = median(pyPg.map((p) => p.wall));
    const pyPgSec = (k: 'fetch_seconds' | 'train_seconds' | 'add_seconds' | 'write_seconds' | 'total_seconds'): number => median(pyPg.map((p) => p[k]));
    const outcomes = entries.map((e) => String(e['outcome']));
    const lines = [
      `FAISS rebuild benchmark, ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}); Node ${process.version}; ` +
        `python3-faiss ${py[0]?.faiss_version} (numpy ${py[0]?.numpy_version}, ${py[0]?.threads} OpenMP threads); OPENBLAS_CORETYPE=${process.env['OPENBLAS_CORETYPE'] ?? '(unset)'}; ` +
        `load average at the start ${loadStart}, at the end ${os.loadavg()[0]?.toFixed(2)}.`,
      '',
      `Data: ${N.toLocaleString('en')} × ${D} float32 vectors (1000 clusters), a Postgres 15 table on loopback (bigint id, real[]); ${FACTORY}, train on ${TRAIN.toLocaleString('en')}, ` +
        `${ROUNDS} interleaved rounds (medians). The index file is ${mb(indexBytes)}.`,
      '',
      '| measure | housekeeper | python3-faiss | ratio | target | result |',
      '|---|---|---|---|---|---|',
      `| rebuild wall time (hk: table → verified, published file; python: train + add from numpy) | ${f2(hkWall)} s | ${f2(pyTotal)} s | ${f2(ratio)} | ≤ 1.25 | ${ratio <= 1.25 ? 'PASS' : 'MISS'} |`,
      `| train + add only (hk: inside the build child) | ${f2(sec('train') + sec('add'))} s | ${f2(pyTotal)} s | ${f2(buildRatio)} | — | info |`,
      `| from the same table, end to end (hk: action wall as above; python: process wall, COPY → numpy, train, add, write_index) | ${f2(hkWall)} s | ${f2(pyPgWall)} s | ${f2(hkWall / pyPgWall)} | — | info |`,
      `| /metrics p99, during a rebuild vs idle | ${f2(duringP99)} ms (${during.length} scrapes) | idle ${f2(idleP99)} ms (${idle.length} scrapes) | ${f2(duringP99 / idleP99)} | ≤ 2 | ${duringP99 <= 2 * idleP99 ? 'PASS' : 'MISS'} |`,
      `| /metrics median, during vs idle | ${f2(median(during))} ms | ${f2(median(idle))} ms | ${f2(median(during) / median(idle))} | — | info |`,
      `| build child peak RSS (VmHWM) vs 2 × index + 150 MB | ${mb(peak)} | budget ${mb(budget)} | ${f2(peak / budget)} | ≤ 1 | ${peak <= budget ? 'PASS' : 'MISS'} |`,
      '',
      'Where the time goes (medians):',
      '',
      `| phase | housekeeper (build child) | python3-faiss, arrays | python3-faiss, from the table |`,
      '|---|---|---|---|',
      `| fetch: binary COPY, decode (hk: and sample, spool to disk) | ${f2(sec('fetch'))} s | — (in memory) | ${f2(pyPgSec('fetch_seconds'))} s |`,
      `| train | ${f2(sec('train'))} s | ${f2(pyTrain)} s | ${f2(pyPgSec('train_seconds'))} s |`,
      `| add | ${f2(sec('add'))} s | ${f2(pyAdd)} s | ${f2(pyPgSec('add_seconds'))} s |`,
      `| write (hk: + fsync) | ${f2(sec('write'))} s | — | ${f2(pyPgSec('write_seconds'))} s |`,
      `| verify: load back, exact search, recall | ${f2(sec('verify'))} s | — | — |`,
      `| in-process total / wall (hk: child start, catalog, publish; python: interpreter, imports) | ${f2(sec('total'))} s / ${f2(hkWall)} s | ${f2(pyTotal)} s | ${f2(pyPgSec('total_seconds'))} s / ${f2(pyPgWall)} s |`,
      '',
      'faiss-node alone, the same vectors from memory, its own process, batches of 2000 (seconds; bench/faiss-rebuild-profile.ts):',
      '',
      '| | train (20k) | add (100k, IVF) | IndexFlat.add (a copy in FAISS: the conversion) | building number[] from Float32Array | peak RSS |',
      '|---|---|---|---|---|---|',
      `| number[] (stock faiss-node 0.5.1's only path) | ${f2(prof.train)} | ${f2(prof.add)} (of which building the arrays ${f2(prof.toArrayInAdd ?? 0)}) | ${f2(prof.flatAdd)} | ${f2(prof.toArray ?? 0)} (train sample) | ${mb(prof.peakRssBytes)} |`,
      `| Float32Array (scripts/faiss-shim/float32.patch; what the build child uses) | ${f2(f32.train)} | ${f2(f32.add)} | ${f2(f32.flatAdd)} | — | ${mb(f32.peakRssBytes)} |`,
      `| python3-faiss, numpy (section 1) | ${f2(pyTrain)} | ${f2(pyAdd)} | — | — | — |`,
      '',
      `Details: the child's peak RSS at the end of each phase ` +
        `${Object.entries((hk.at(-1)?.details['peak_rss_by_phase'] ?? {}) as Record<string, number>).map(([k, v]) => `${k} ${mb(v)}`).join(', ')}; ` +
        `nprobe written ${String(hk.at(-1)?.details['nprobe'])}, recall@10 at build ${Number(hk.at(-1)?.details['recall_at_10']).toFixed(3)}; ` +
        `walls ${hk.map((h) => f2(h.wall)).join(', ')} s; python ${py.map((p) => f2(p.total_seconds)).join(', ')} s; python from the table ${pyPg.map((p) => f2(p.wall)).join(', ')} s; ` +
        `rebuilds through the engine: ${outcomes.join(', ')} (child VmHWM sampled during the scrapes: ${peaks.map(mb).join(', ')}); ` +
        `the log's last entry: ${String(entries.at(-1)?.['reason'] ?? entries.at(-1)?.['error'] ?? '').slice(0, 400)}.`,
      '',
      'Command: `bash scripts/node.sh bench/run.ts faiss-rebuild` (part of `npm run bench`; `bash scripts/node.sh bench/faiss-rebuild.ts` runs it alone).',
    ];
    const text = `${lines.join('\n')}\n`;
    writeFileSync(RESULTS, text);
    process.stdout.write(text);
  } finally {
    if (svc) await svc.proc.stop(10_000);
    if (primary) await primary.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
