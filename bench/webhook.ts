// Webhook benchmark: acceptance of Alertmanager notifications into the durable queue.
//
// housekeeper runs as a separate Node process (as it would beside Alertmanager), built by
// test/helpers/remediation.ts's startInstance, with its state in a real Postgres from the
// harness (fsync on; a fresh state database per cell) or in the embedded PGlite (no
// state.url). The one rule routes every alert to the counting test action with `delay: 1h`,
// so each accepted alert is a real durable job (pg-boss insert + episode insert) that stays
// queued: the workers are running and polling, but no action runs during the measurement.
//
// Each cell: W warm-up requests, then senders in closed loops over one undici keep-alive
// pool until N requests are done or S seconds have passed, whichever comes first.
//   - distinct: every alert is a new episode (its own labels, fingerprint and startsAt);
//   - duplicate: the same notification again and again (after its first store, all dedupe).
// Latency is request start to response body end, on the sender's side. After each cell the
// stored jobs and episodes are counted and must equal what was sent.
// Prints a markdown table (PASS/MISS for the target at 8 senders) and writes
// bench/results/webhook.md.
//
// Knobs: HOUSEKEEPER_BENCH_WEBHOOK_REQUESTS (max per cell, 5000), _SECONDS (5), _WARMUP (200),
// _SENDERS (e.g. "8" to run only those cells), _ONLY (a regular expression on cell names such as
// "postgres-distinct-1a-8s"), HOUSEKEEPER_BENCH_WEBHOOK_CPU_PROF=DIR (the
// server process writes a .cpuprofile per cell into DIR).
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Pool } from 'undici';
import { startPostgres, type PgServer } from '../test/harness/postgres.ts';
import { childPids } from '../test/harness/proc.ts';
import { countingAction, notification, rulesDir, startInstance, TOKEN, type TestAlert } from '../test/helpers/remediation.ts';
import { intEnv, resultsFile, ROOT } from './lib.ts';

const RESULTS = resultsFile('webhook');
const SELF = fileURLToPath(import.meta.url);

// Every loop below is bounded by these.
const REQUESTS = intEnv('HOUSEKEEPER_BENCH_WEBHOOK_REQUESTS', 5000, 10, 20_000);
const SECONDS = intEnv('HOUSEKEEPER_BENCH_WEBHOOK_SECONDS', 5, 1, 60);
const WARMUP = intEnv('HOUSEKEEPER_BENCH_WEBHOOK_WARMUP', 200, 0, 5000);
const SENDERS = (process.env['HOUSEKEEPER_BENCH_WEBHOOK_SENDERS'] ?? '1,8,64').split(',').map((s) => Number.parseInt(s, 10));
if (SENDERS.some((s) => !Number.isInteger(s) || s < 1 || s > 256)) throw new Error('HOUSEKEEPER_BENCH_WEBHOOK_SENDERS: integers in [1, 256]');
const CPU_PROF = process.env['HOUSEKEEPER_BENCH_WEBHOOK_CPU_PROF'];
// Runs only the cells whose name (e.g. "postgres-distinct-1a-8s") matches this regular expression.
const ONLY = new RegExp(process.env['HOUSEKEEPER_BENCH_WEBHOOK_ONLY'] ?? '');
const REQUEST_TIMEOUT_MS = 30_000;
const TARGET = { senders: 8, perSecond: 2000, p99Ms: 25 };

const RULES = `
rules:
  - name: bench
    matchers: ['alertname="TestAlert"']
    action: test-count
    params: { target: "{{ $labels.target }}" }
    delay: 1h
    cooldown: 1h
    max_attempts: 1
`;

// ---------------------------------------------------------------------------------------
// The server process: `bench/webhook.ts --serve`, driven over IPC by main().

type ToServer = { type: 'start'; yaml: string; appUrl: string } | { type: 'stop' };
type FromServer =
  | { type: 'ready'; url: string }
  | { type: 'stopped'; jobs: number; episodes: number }
  | { type: 'error'; message: string };

async function serve(): Promise<void> {
  const send = (m: FromServer): void => void process.send?.(m);
  let close: (() => Promise<void>) | undefined;
  let counts: (() => Promise<{ jobs: number; episodes: number }>) | undefined;
  // The parent is gone: nothing more to do here.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: ToServer) => {
    void (async () => {
      try {
        if (m.type === 'start') {
          const i = await startInstance(m.yaml, [countingAction(m.appUrl)]);
          const state = i.app.remediation?.state;
          if (!state) throw new Error('remediation is off');
          counts = async () => {
            const [j] = await state.query<{ n: number }>('SELECT count(*)::int AS n FROM housekeeper_queue.job');
            const [e] = await state.query<{ n: number }>('SELECT count(*)::int AS n FROM housekeeper.episodes');
            return { jobs: j?.n ?? -1, episodes: e?.n ?? -1 };
          };
          close = () => i.close();
          send({ type: 'ready', url: i.url });
        } else {
          const c = counts ? await counts() : { jobs: -1, episodes: -1 };
          await close?.();
          send({ type: 'stopped', ...c });
          // A normal exit, so --cpu-prof writes its profile.
          setImmediate(() => process.exit(0));
        }
      } catch (err) {
        send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      }
    })();
  });
}

class Server {
  readonly child: ChildProcess;
  private readonly pending: Array<(m: FromServer) => void> = [];
  private readonly exited: Promise<void>;

  constructor(tag: string) {
    const execArgv = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`, `--cpu-prof-name=webhook-${tag}.cpuprofile`] : [];
    this.child = fork(SELF, ['--serve'], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: FromServer) => this.pending.shift()?.(m));
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('bench: server process did not start');
    return this.child.pid;
  }

  private ask(m: ToServer, timeoutMs: number): Promise<FromServer> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`bench: server did not answer ${m.type} within ${timeoutMs} ms`)), timeoutMs);
      this.pending.push((r) => {
        clearTimeout(t);
        if (r.type === 'error') reject(new Error(`bench: server: ${r.message}`));
        else resolve(r);
      });
      this.child.send(m);
    });
  }

  async start(yaml: string, appUrl: string): Promise<string> {
    const r = await this.ask({ type: 'start', yaml, appUrl }, 60_000);
    if (r.type !== 'ready') throw new Error('bench: unexpected answer');
    return r.url;
  }

  async stop(): Promise<{ jobs: number; episodes: number }> {
    try {
      const r = await this.ask({ type: 'stop' }, 60_000);
      if (r.type !== 'stopped') throw new Error('bench: unexpected answer');
      await Promise.race([this.exited, new Promise((r2) => setTimeout(r2, 10_000).unref())]);
      return { jobs: r.jobs, episodes: r.episodes };
    } finally {
      this.kill();
    }
  }

  /** Our own child, by its handle. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------
// /proc: CPU time in ms (utime+stime, and of reaped children for the postmaster).

const CLK_TCK = 100;
function cpuMs(pid: number, withReaped = false): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the comm: state is f[0]; utime f[11], stime f[12], cutime f[13], cstime f[14].
    const ticks = Number(f[11]) + Number(f[12]) + (withReaped ? Number(f[13]) + Number(f[14]) : 0);
    return (ticks * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Busy and total jiffies of the whole machine (/proc/stat), to tell a CPU-bound cell. */
function machineTicks(): { busy: number; total: number } {
  const f = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  // idle + iowait are not busy.
  return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total };
}

function postgresCpuMs(pgs: PgServer | undefined): number {
  const pid = pgs?.pid;
  if (pid === undefined) return 0;
  return cpuMs(pid, true) + childPids(pid).reduce((s, c) => s + cpuMs(c), 0);
}

// ---------------------------------------------------------------------------------------
// Load

interface CellSpec {
  state: 'postgres' | 'pglite';
  mode: 'distinct' | 'duplicate';
  alerts: 1 | 10;
  senders: number;
}

interface CellResult extends CellSpec {
  done: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  /** Alert results the server reported, summed over the measured requests. */
  results: Record<string, number>;
  hkCpuPerNotification: number;
  pgCpuPerNotification: number;
  /** The sender process (this one), per notification. */
  senderCpuPerNotification: number;
  /** Share of all CPUs busy during the measured phase, 0..1. */
  machineBusy: number;
  /** CPUs' worth used by processes other than the sender, housekeeper and Postgres. */
  othersCores: number;
  stored: { jobs: number; episodes: number; expected: number };
}

let cellCounter = 0;

const cellName = (s: CellSpec): string => `${s.state}-${s.mode}-${s.alerts}a-${s.senders}s`;

/** The bodies of one cell, made before the clock starts so the sender's cost is small. */
function bodies(spec: CellSpec, count: number, tag: string): string[] {
  const base = Date.parse('2026-11-28T10:00:00.000Z');
  if (spec.mode === 'duplicate') {
    const alerts: TestAlert[] = Array.from({ length: spec.alerts }, (_, j) => ({
      labels: { alertname: 'TestAlert', severity: 'warning', target: `db${j}`, instance: `dup-${tag}-${j}` },
      startsAt: new Date(base).toISOString(),
    }));
    const one = JSON.stringify(notification(alerts));
    return Array.from({ length: count }, () => one);
  }
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const alerts: TestAlert[] = Array.from({ length: spec.alerts }, (_, j) => {
      const n = i * spec.alerts + j;
      return {
        labels: { alertname: 'TestAlert', severity: 'warning', target: `db${n % 50}`, instance: `host-${tag}-${n}` },
        // Distinct fingerprint (from the labels) and a distinct startsAt: a new episode each.
        startsAt: new Date(base + n * 1000).toISOString(),
      };
    });
    out.push(JSON.stringify(notification(alerts)));
  }
  return out;
}

interface LoadOut {
  latencies: number[];
  errors: number;
  results: Record<string, number>;
  seconds: number;
}

async function load(pool: Pool, body: readonly string[], senders: number, deadlineMs: number): Promise<LoadOut> {
  const latencies: number[] = [];
  const results: Record<string, number> = {};
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const deadline = started + deadlineMs;
  const sender = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= body.length || performance.now() > deadline) return;
      const t0 = performance.now();
      try {
        const res = await pool.request({
          path: '/hooks/alertmanager',
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
          body: body[i],
        });
        const text = await res.body.text();
        latencies.push(performance.now() - t0);
        if (res.statusCode !== 202) {
          errors++;
          continue;
        }
        const r = (JSON.parse(text) as { results?: Record<string, number> }).results ?? {};
        for (const [k, v] of Object.entries(r)) results[k] = (results[k] ?? 0) + v;
      } catch {
        latencies.push(performance.now() - t0);
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: senders }, () => sender()));
  return { latencies, errors, results, seconds: (performance.now() - started) / 1000 };
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const QUIET_WAIT_S = 60;
const ATTEMPTS = 3;
const NOISY_CORES = 0.3;
const QUIET_CORES = 0.2;

/** Waits (bounded) until processes other than ours use less than QUIET_CORES, so cells compare. */
async function waitQuiet(pgs: PgServer): Promise<number> {
  let others = Number.NaN;
  for (let i = 0; i < QUIET_WAIT_S; i++) {
    const m0 = machineTicks();
    const p0 = postgresCpuMs(pgs);
    const me0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 1000));
    const me = process.cpuUsage(me0);
    const m1 = machineTicks();
    others = (((m1.busy - m0.busy) * 1000) / CLK_TCK - (postgresCpuMs(pgs) - p0) - (me.user + me.system) / 1000) / 1000;
    if (others < QUIET_CORES) return others;
  }
  return others;
}

async function runCell(spec: CellSpec, pgs: PgServer, admin: pg.Pool): Promise<CellResult> {
  const tag = `c${++cellCounter}`;
  let stateYaml: string;
  let pgliteDir: string | undefined;
  if (spec.state === 'postgres') {
    await admin.query(`CREATE DATABASE bench_${tag}`);
    stateYaml = `state: { url: "${pgs.url({ db: `bench_${tag}` })}" }`;
  } else {
    pgliteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hk-bench-pglite-'));
    stateYaml = `state: { path: "${pgliteDir}" }`;
  }
  const yaml = `
${stateYaml}
remediation:
  rules_dir: ${rulesDir(RULES)}
  replica_name: bench
`;
  // Distinct bodies for warm-up and measurement; one repeated body for duplicate cells.
  const all = bodies(spec, WARMUP + REQUESTS, tag);
  const others = await waitQuiet(pgs);
  if (others >= QUIET_CORES) process.stderr.write(`  (other processes still use ${f2(others)} CPUs; measuring anyway)\n`);
  const server = new Server(`${tag}-${cellName(spec)}`);
  const pool = new Pool(await server.start(yaml, pgs.url({ db: 'app' })), {
    connections: spec.senders,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
  });
  try {
    const warm = await load(pool, all.slice(0, WARMUP), Math.min(spec.senders, 8), 60_000);
    if (warm.errors > 0) throw new Error(`bench: ${warm.errors} warm-up requests failed`);
    const hk0 = cpuMs(server.pid);
    const pg0 = postgresCpuMs(pgs);
    const m0 = machineTicks();
    const me0 = process.cpuUsage();
    const out = await load(pool, all.slice(WARMUP), spec.senders, SECONDS * 1000);
    const me = process.cpuUsage(me0);
    const m1 = machineTicks();
    const hkCpu = cpuMs(server.pid) - hk0;
    const pgCpu = spec.state === 'postgres' ? postgresCpuMs(pgs) - pg0 : Number.NaN;
    await pool.close();
    const stored = await server.stop();
    const sorted = [...out.latencies].sort((a, b) => a - b);
    const done = out.latencies.length;
    const expected = spec.mode === 'duplicate' ? spec.alerts : (WARMUP + done) * spec.alerts;
    return {
      ...spec,
      done,
      seconds: out.seconds,
      perSecond: done / out.seconds,
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      max: sorted[sorted.length - 1] ?? Number.NaN,
      errors: out.errors,
      results: out.results,
      hkCpuPerNotification: hkCpu / done,
      pgCpuPerNotification: pgCpu / done,
      senderCpuPerNotification: (me.user + me.system) / 1000 / done,
      machineBusy: (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total),
      othersCores:
        spec.state === 'postgres'
          ? Math.max(0, ((m1.busy - m0.busy) * 1000) / CLK_TCK - hkCpu - pgCpu - (me.user + me.system) / 1000) / 1000 / out.seconds
          : Math.max(0, ((m1.busy - m0.busy) * 1000) / CLK_TCK - hkCpu - (me.user + me.system) / 1000) / 1000 / out.seconds,
      stored: { ...stored, expected },
    };
  } finally {
    await pool.close().catch(() => {});
    server.kill();
    if (pgliteDir) fs.rmSync(pgliteDir, { recursive: true, force: true });
    if (spec.state === 'postgres') await admin.query(`DROP DATABASE IF EXISTS bench_${tag} WITH (FORCE)`).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------
// Report

const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '—');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '—');

function verdict(r: CellResult): string {
  if (r.senders !== TARGET.senders || r.mode !== 'distinct') return '';
  const ok = r.perSecond >= TARGET.perSecond && r.p99 < TARGET.p99Ms && r.errors === 0;
  return ok ? 'PASS' : 'MISS';
}

function storedCheck(r: CellResult): string {
  const s = r.stored;
  return s.jobs === s.expected && s.episodes === s.expected ? `ok (${s.jobs})` : `**jobs ${s.jobs}, episodes ${s.episodes}, expected ${s.expected}**`;
}

function table(rows: readonly CellResult[]): string {
  const head =
    '| state | alerts/notif. | senders | notifications | notif./s | alerts/s | p50 ms | p99 ms | max ms | non-202 | CPU ms/notif.: hk / pg / sender | CPUs busy (others) | stored jobs = episodes | results | target |\n' +
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n';
  return (
    head +
    rows
      .map((r) =>
        [
          r.state === 'postgres' ? 'Postgres' : 'PGlite',
          r.alerts,
          r.senders,
          r.done,
          f1(r.perSecond),
          f1(r.perSecond * r.alerts),
          f2(r.p50),
          f2(r.p99),
          f2(r.max),
          r.errors,
          `${f2(r.hkCpuPerNotification)} / ${f2(r.pgCpuPerNotification)} / ${f2(r.senderCpuPerNotification)}`,
          `${Math.round(r.machineBusy * 100)}% (${f2(r.othersCores)})`,
          storedCheck(r),
          Object.entries(r.results)
            .map(([k, v]) => `${k} ${v}`)
            .join(', '),
          verdict(r),
        ].join(' | '),
      )
      .map((l) => `| ${l} |`)
      .join('\n') +
    '\n'
  );
}

export async function main(): Promise<void> {
  const cells: CellSpec[] = [];
  for (const alerts of [1, 10] as const) for (const senders of SENDERS) cells.push({ state: 'postgres', mode: 'distinct', alerts, senders });
  for (const alerts of [1, 10] as const) for (const senders of SENDERS) cells.push({ state: 'postgres', mode: 'duplicate', alerts, senders });
  for (const alerts of [1, 10] as const) cells.push({ state: 'pglite', mode: 'distinct', alerts, senders: TARGET.senders });
  const chosen = cells.filter((c) => ONLY.test(cellName(c)));

  // fsync on (the harness turns it off for tests): acceptance is only as fast as a durable commit.
  const pgs = await startPostgres({ settings: { fsync: 'on', synchronous_commit: 'on' } });
  const admin = new pg.Pool({ connectionString: pgs.url(), max: 2 });
  const rows: CellResult[] = [];
  try {
    const version = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?';
    for (const spec of chosen) {
      process.stderr.write(`bench webhook: ${spec.state} ${spec.mode} ${spec.alerts} alert(s) × ${spec.senders} sender(s)\n`);
      // Other sessions share this machine: a cell they disturbed runs again (bounded), and the
      // least disturbed attempt is kept; the table shows how much they used.
      let r: CellResult | undefined;
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        const a = await runCell(spec, pgs, admin);
        if (!r || a.othersCores < r.othersCores) r = a;
        if (a.othersCores < NOISY_CORES) break;
        process.stderr.write(`  attempt ${attempt}: other processes used ${f2(a.othersCores)} CPUs meanwhile (${f1(a.perSecond)}/s, p99 ${f2(a.p99)} ms)\n`);
      }
      if (!r) throw new Error('bench: no attempt');
      process.stderr.write(`  ${r.done} in ${r.seconds.toFixed(2)} s: ${f1(r.perSecond)}/s, p50 ${f2(r.p50)} ms, p99 ${f2(r.p99)} ms, non-202 ${r.errors}, stored ${storedCheck(r)}\n`);
      rows.push(r);
    }
    const cpu = os.cpus();
    const header =
      `Webhook benchmark, ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; ${cpu.length} CPUs (${cpu[0]?.model.trim() ?? '?'}); ` +
      `node ${process.version}; state Postgres ${version} from the harness with fsync on (data on ${pgs.dataDir.startsWith('/dev/shm') ? 'tmpfs' : 'disk'}), a fresh database per cell; ` +
      `PGlite in a temp dir under ${os.tmpdir()}.\n\n` +
      `Each cell: housekeeper in its own process (startInstance), ${WARMUP} warm-up requests, then up to ${REQUESTS} requests or ${SECONDS} s over one undici keep-alive pool with one connection per sender, ` +
      `POST /hooks/alertmanager with a bearer token. The rule sends every alert to the counting test action with delay 1h: each accepted alert is a durable pg-boss job plus an episode row that stays queued ` +
      `(workers running, nothing due). Latency is per request, start to end of the response body, on the sender's side. ` +
      `"stored" counts housekeeper_queue.job and housekeeper.episodes after the cell (warm-up included). CPU per notification is utime+stime during the measured phase of the housekeeper process, of the Postgres server's processes and of the sender (this process); "CPUs busy" is the whole machine's share (/proc/stat), and in brackets how many CPUs' worth other processes on the machine used meanwhile (before each cell the bench waits, at most ${QUIET_WAIT_S} s, for them to use under ${QUIET_CORES} CPU; a cell during which they used ${NOISY_CORES} or more runs again, up to ${ATTEMPTS} attempts, and the least disturbed is shown). ` +
      `Target (issue 4): ≥ ${TARGET.perSecond} notifications/s with p99 < ${TARGET.p99Ms} ms at ${TARGET.senders} senders.\n`;
    const distinct = rows.filter((r) => r.mode === 'distinct' && r.state === 'postgres');
    const dup = rows.filter((r) => r.mode === 'duplicate');
    const lite = rows.filter((r) => r.state === 'pglite');
    const md =
      `# Webhook benchmark results\n\nWritten by \`bash scripts/node.sh bench/webhook.ts\` (bench/webhook.ts).\n\n${header}\n` +
      `## Distinct episodes, Postgres state (every alert a new durable job)\n\n${table(distinct)}\n` +
      `## Duplicate-heavy, Postgres state (the same notification repeated; all but its first delivery dedupe)\n\n${table(dup)}\n` +
      `## Distinct episodes, embedded PGlite state (no state.url)\n\n${table(lite)}`;
    process.stdout.write(`\n${md}\n`);
    fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
    fs.writeFileSync(RESULTS, md);
    process.stderr.write(`bench webhook: wrote ${path.relative(ROOT, RESULTS)}\n`);
  } finally {
    await admin.end().catch(() => {});
    await pgs.destroy();
  }
}

if (process.argv[2] === '--serve' && process.send) {
  await serve();
} else if (import.meta.main) {
  await main();
}
