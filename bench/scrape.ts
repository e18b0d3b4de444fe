// Scrape benchmark: housekeeper against the anchor exporters (postgres_exporter 0.11 and
// redis_exporter 1.45), all three as separate processes scraping the same real servers
// (test/harness: Postgres primary + replica, PgBouncer, Redis) on loopback.
//
// Measured in one run (see bench/README.md):
//   - scrape latency, median and p99, of N sequential scrapes after a warm-up;
//   - CPU per scrape of each exporter process (utime+stime from /proc/PID/stat);
//   - idle RSS of housekeeper (VmRSS after a few scrapes and 2 s idle);
//   - statements per second on the primary with 1 scraper vs 8 concurrent scrapers, each in a
//     closed loop for a fixed time (delta of sum(calls) in pg_stat_statements).
// Prints a markdown table with PASS/MISS per target and writes it to bench/results/scrape.md.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { cleanEnv, makeTempDir, removeTempDir, sleep, writeOwnedFile } from '../test/harness/proc.ts';
import { startStack, type Stack } from '../test/harness/stack.ts';
import { startExporter, type AnchorExporter } from '../test/helpers/anchors.ts';
import { benchLog, cpuMs, f1, f2, intEnv, quantile, resultsFile, ROOT, scrape, startHousekeeper, type Scrape } from './lib.ts';

const RESULTS = resultsFile('scrape');

// Every loop below is bounded by these.
const SCRAPES = intEnv('HOUSEKEEPER_BENCH_SCRAPES', 300, 10, 5000);
const WARMUP = intEnv('HOUSEKEEPER_BENCH_WARMUP', 30, 1, 1000);
const LOAD_SECONDS = intEnv('HOUSEKEEPER_BENCH_LOAD_SECONDS', 5, 1, 60);
const CONCURRENT = 8;
// Extra Node flags for housekeeper's process, to try heap settings: e.g. "--max-semi-space-size=2".
const NODE_FLAGS = (process.env['HOUSEKEEPER_BENCH_NODE_FLAGS'] ?? '').split(/\s+/).filter((f) => f !== '');
if (NODE_FLAGS.some((f) => !f.startsWith('--'))) throw new Error('HOUSEKEEPER_BENCH_NODE_FLAGS: only --flags');

// ---------------------------------------------------------------------------------------
// /proc

function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) / 1024;
}

function machine(): { nproc: number; cpu: string } {
  const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  return { nproc: os.availableParallelism(), cpu: /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? 'unknown' };
}

// ---------------------------------------------------------------------------------------
// Exporter processes

type Exporter = AnchorExporter;

// ---------------------------------------------------------------------------------------
// Scraping

/** Samples of a metric (any labels) as [labels text, value]. Enough for sanity checks. */
function samples(body: string, name: string): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const line of body.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)/.exec(line);
    if (m && m[1] === name) out.push([m[2] ?? '', Number(m[3])]);
  }
  return out;
}

function seriesCount(body: string): number {
  return body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
}

function expectAll(body: string, name: string, want: number, what: string, minCount = 1): void {
  const s = samples(body, name);
  if (s.length < minCount || s.some(([, v]) => v !== want)) {
    throw new Error(`${what}: expected ${minCount}+ samples of ${name} all = ${want}, got ${JSON.stringify(s)}`);
  }
}

// ---------------------------------------------------------------------------------------
// Demo data

async function seed(stack: Stack): Promise<void> {
  const c = new pg.Client({ connectionString: stack.primary.url({ db: 'app' }) });
  await c.connect();
  try {
    for (const s of [
      // The harness installs it in the postgres database only; the app's database has it too,
      // so housekeeper's top-statements query runs as it would in production.
      `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`,
      `CREATE TABLE documents (id bigint PRIMARY KEY, title text NOT NULL, body text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
      `CREATE TABLE conversations (id int PRIMARY KEY, user_id int NOT NULL, started_at timestamptz NOT NULL, archived boolean NOT NULL DEFAULT false)`,
      `CREATE TABLE chat_logs (id bigserial PRIMARY KEY, conversation_id int NOT NULL, message text NOT NULL, created_at timestamptz NOT NULL)`,
      `CREATE TABLE embeddings (document_id bigint PRIMARY KEY, model text NOT NULL, dims int NOT NULL)`,
      // Keep the dead tuples for the whole run: autovacuum would otherwise clean some mid-run.
      ...['documents', 'conversations', 'chat_logs', 'embeddings'].map((t) => `ALTER TABLE ${t} SET (autovacuum_enabled = false)`),
      `INSERT INTO documents (id, title, body) SELECT g, 'document ' || g, repeat('lorem ipsum dolor ', 20) FROM generate_series(1, 20000) g`,
      `INSERT INTO conversations SELECT g, g % 700, now() - g * interval '1 minute' FROM generate_series(1, 5000) g`,
      `INSERT INTO chat_logs (conversation_id, message, created_at) SELECT 1 + g % 5000, 'message ' || g, now() - g * interval '10 seconds' FROM generate_series(1, 50000) g`,
      `INSERT INTO embeddings SELECT g, 'e5-small', 384 FROM generate_series(1, 20000) g`,
      `CREATE INDEX chat_logs_conversation ON chat_logs (conversation_id)`,
      `UPDATE documents SET updated_at = now() WHERE id % 5 = 0`,
      `DELETE FROM chat_logs WHERE id % 10 = 0`,
      `UPDATE conversations SET archived = true WHERE id % 3 = 0`,
      `ANALYZE`,
    ]) {
      await c.query(s);
    }
  } finally {
    await c.end(); // a backend flushes its table statistics when it exits
  }
  const r = new Redis(stack.redis.url(0), { lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  try {
    for (const db of [0, 1]) {
      await r.select(db);
      const p = r.pipeline();
      for (let i = 0; i < 2500; i++) {
        if (db === 0) p.set(`cache:query:${i}`, `answer ${i} `.repeat(8), 'EX', 3600 + i);
        else p.hset(`session:${i}`, { user: String(i % 700), started: String(Date.now()) });
      }
      await p.exec();
    }
  } finally {
    r.disconnect();
  }
}

// ---------------------------------------------------------------------------------------
// Database load

/** Statements completed on a server so far (pg_stat_statements, updated as each one ends). */
async function statementsCounter(stack: Stack): Promise<{ read(): Promise<number>; close(): Promise<void> }> {
  const c = new pg.Client({ connectionString: stack.primary.url({ db: 'postgres' }) });
  await c.connect();
  return {
    async read() {
      const r = await c.query<{ calls: number }>('SELECT COALESCE(sum(calls), 0)::float8 AS calls FROM pg_stat_statements');
      return Number(r.rows[0]?.calls ?? 0);
    },
    close: () => c.end(),
  };
}

interface Load {
  scrapers: number;
  seconds: number;
  scrapes: number;
  statements: number;
  qps: number;
}

/**
 * `scrapers` closed loops scraping `url` for `seconds`; the primary's statements per second
 * over that window. Each read of the counter is itself one statement, counted once it has
 * finished: the first read shows up in the second, so one is subtracted.
 */
async function loadPhase(url: string, scrapers: number, seconds: number, counter: { read(): Promise<number> }): Promise<Load> {
  const before = await counter.read();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let scrapes = 0;
  await Promise.all(
    Array.from({ length: scrapers }, async () => {
      while (performance.now() < end) {
        await scrape(url);
        scrapes++;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const statements = (await counter.read()) - before - 1;
  return { scrapers, seconds: elapsed, scrapes, statements, qps: statements / elapsed };
}

// ---------------------------------------------------------------------------------------
// Report

const pass = (ok: boolean): string => (ok ? 'PASS' : 'MISS');

/** The 1-minute load average: other work on the machine skews latencies. */
function loadavg(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?';
}

interface Results {
  when: string;
  load: { before: string; after: string };
  machine: { nproc: number; cpu: string };
  versions: Record<string, string>;
  scrapes: number;
  warmup: number;
  hk: { median: number; p99: number; cpu: number; rss: number; rssAfter: number; series: number; bytes: number; contentType: string };
  pe: { median: number; p99: number; cpu: number; rss: number; series: number; bytes: number };
  re: { median: number; p99: number; cpu: number; rss: number; series: number; bytes: number };
  anchorSum: { median: number; p99: number };
  idleStatements: number;
  hkLoad: [Load, Load];
  peLoad: [Load, Load];
}

function report(r: Results): string {
  const anchorsMedian = r.pe.median + r.re.median;
  const latRatio = r.hk.median / anchorsMedian;
  const p99Ratio = r.hk.p99 / r.anchorSum.p99;
  const anchorsCpu = r.pe.cpu + r.re.cpu;
  const cpuRatio = r.hk.cpu / anchorsCpu;
  const [one, eight] = r.hkLoad;
  const loadRatio = eight.qps / one.qps;
  const [pe1, pe8] = r.peLoad;
  const lines = [
    `Scrape benchmark, ${r.when}; ${r.machine.nproc} CPUs (${r.machine.cpu}), load average ${r.load.before} before the measurements and ${r.load.after} after; ${r.scrapes} sequential scrapes each after ${r.warmup} warm-up scrapes; load phases ${LOAD_SECONDS} s each.`,
    '',
    '| measure | housekeeper | postgres_exporter + redis_exporter | ratio | target | result |',
    '|---|---|---|---|---|---|',
    `| scrape latency, median | ${f2(r.hk.median)} ms | ${f2(r.pe.median)} + ${f2(r.re.median)} = ${f2(anchorsMedian)} ms | ${f2(latRatio)} | ≤ 0.5 | ${pass(latRatio <= 0.5)} |`,
    `| scrape latency, p99 | ${f2(r.hk.p99)} ms | ${f2(r.anchorSum.p99)} ms (p99 of the per-iteration sum) | ${f2(p99Ratio)} | — | info |`,
    `| CPU per scrape (utime+stime) | ${f2(r.hk.cpu)} ms | ${f2(r.pe.cpu)} + ${f2(r.re.cpu)} = ${f2(anchorsCpu)} ms | ${f2(cpuRatio)} | ≤ 1 | ${pass(cpuRatio <= 1)} |`,
    `| idle RSS | ${f1(r.hk.rss)} MB | ${f1(r.pe.rss)} + ${f1(r.re.rss)} MB | — | < 120 MB | ${pass(r.hk.rss < 120)} |`,
    `| primary statements/s, 1 scraper | ${f1(one.qps)} (${one.scrapes} scrapes, ${f1(one.statements / one.scrapes)}/scrape) | postgres_exporter: ${f1(pe1.qps)} (${pe1.scrapes} scrapes) | — | — | info |`,
    `| primary statements/s, 8 scrapers | ${f1(eight.qps)} (${eight.scrapes} scrapes, ${f1(eight.statements / eight.scrapes)}/scrape) | postgres_exporter: ${f1(pe8.qps)} (${pe8.scrapes} scrapes) | 8 vs 1: ${f2(loadRatio)} (postgres_exporter ${f2(pe8.qps / pe1.qps)}) | ≤ 1 | ${pass(loadRatio <= 1)} |`,
    '',
    'Details:',
    '',
    `- housekeeper: ${NODE_FLAGS.length > 0 ? `run with Node flags ${NODE_FLAGS.join(' ')}; ` : ''}${r.hk.series} samples, ${r.hk.bytes} bytes (${r.hk.contentType}); RSS after the whole run ${f1(r.hk.rssAfter)} MB.`,
    `- postgres_exporter: ${r.pe.series} samples, ${r.pe.bytes} bytes; median ${f2(r.pe.median)} ms, p99 ${f2(r.pe.p99)} ms.`,
    `- redis_exporter: ${r.re.series} samples, ${r.re.bytes} bytes; median ${f2(r.re.median)} ms, p99 ${f2(r.re.p99)} ms.`,
    `- Median of the per-iteration sum postgres_exporter + redis_exporter: ${f2(r.anchorSum.median)} ms (ratio ${f2(r.hk.median / r.anchorSum.median)}).`,
    `- Statement counter check: ${r.idleStatements} statement(s) counted over 1 s with nothing scraping (expected 0 after subtracting the reader's own).`,
    `- Versions: ${Object.entries(r.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
  ];
  return lines.join('\n') + '\n';
}

/** A tool's version from its --version output (stdout or stderr, whichever it uses). */
function version(cmd: string, args: string[], re: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return re.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1] ?? 'unknown';
}

// ---------------------------------------------------------------------------------------

export async function main(): Promise<void> {
  const log = benchLog('scrape');
  const dir = makeTempDir('hk-bench-', undefined);
  let stack: Stack | undefined;
  const exporters: Exporter[] = [];
  try {
    log('starting Postgres primary + replica, PgBouncer, Redis');
    stack = await startStack();
    const s = stack;
    await seed(s);
    log('seeded demo data');

    // housekeeper: its own process, exactly as `npm start` runs it (bench/lib.ts).
    const hk = await startHousekeeper(ROOT, dir, s, NODE_FLAGS);
    exporters.push(hk);
    const exe = fs.readlinkSync(`/proc/${hk.pid}/exe`);
    const cmdline = fs.readFileSync(`/proc/${hk.pid}/cmdline`, 'utf8').split('\0');
    log(`housekeeper pid ${hk.pid} is ${exe} ${cmdline.slice(1).join(' ')}`);

    // postgres_exporter 0.11 answers 500 to every scrape when DATA_SOURCE_NAME names two
    // servers: its new-style collectors (database, bgwriter) emit their
    // pg_scrape_collector_* series once per server without a server label ("was collected
    // before with the same name and label values", postgres_exporter issues #609 and #706).
    // So those two are off, and the one metric of theirs housekeeper also has,
    // pg_database_size_bytes, comes back through a custom query on the legacy path, which
    // labels each series with its server. Lost: pg_stat_bgwriter_* (housekeeper has no such
    // metric). Everything else is postgres_exporter's default set.
    const queries = path.join(dir, 'postgres_exporter-queries.yml');
    writeOwnedFile(
      queries,
      [
        'pg_database:',
        '  query: "SELECT datname, pg_database_size(datname)::float8 AS size_bytes FROM pg_database"',
        '  master: true',
        '  metrics:',
        '    - datname: { usage: LABEL, description: "Name of the database" }',
        '    - size_bytes: { usage: GAUGE, description: "Disk space used by the database" }',
        '',
      ].join('\n'),
      undefined,
    );
    const dsn = (srv: Stack['primary']): string => `${srv.url({ db: 'app', user: 'housekeeper' })}?sslmode=disable`;
    const pe = await startExporter('postgres_exporter', dir, (port) => ({
      cmd: '/usr/bin/prometheus-postgres-exporter',
      args: [
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
        '--no-collector.database',
        '--no-collector.bgwriter',
        `--extend.query-path=${queries}`,
      ],
      env: cleanEnv({ DATA_SOURCE_NAME: `${dsn(s.primary)},${dsn(s.replica)}` }),
    }));
    exporters.push(pe);
    // The password goes in the environment (REDIS_PASSWORD), not argv; -redis.password-file
    // is a JSON map of address to password in 1.45.
    const re = await startExporter('redis_exporter', dir, (port) => ({
      cmd: '/usr/bin/prometheus-redis-exporter',
      args: [`-web.listen-address=127.0.0.1:${port}`, `-redis.addr=redis://127.0.0.1:${s.redis.port}`],
      env: cleanEnv({ REDIS_PASSWORD: s.redis.password }),
    }));
    exporters.push(re);
    log(`exporters up: housekeeper ${hk.url}, postgres_exporter ${pe.url}, redis_exporter ${re.url}`);

    // Warm-up (connections, JIT, prepared statements).
    let hkLast: Scrape | undefined;
    let peLast: Scrape | undefined;
    let reLast: Scrape | undefined;
    for (let i = 0; i < WARMUP; i++) {
      hkLast = await scrape(hk.url);
      peLast = await scrape(pe.url);
      reLast = await scrape(re.url);
    }
    if (!hkLast || !peLast || !reLast) throw new Error('no warm-up scrape');
    // Every exporter must see every server, or the comparison is void.
    expectAll(hkLast.body, 'housekeeper_collector_success', 1, 'housekeeper', 4);
    expectAll(hkLast.body, 'pg_up', 1, 'housekeeper', 2);
    expectAll(hkLast.body, 'pgbouncer_up', 1, 'housekeeper');
    expectAll(hkLast.body, 'redis_up', 1, 'housekeeper');
    expectAll(peLast.body, 'pg_up', 1, 'postgres_exporter');
    if (samples(peLast.body, 'pg_database_size_bytes').filter(([l]) => l.includes('datname="app"')).length < 2) {
      throw new Error('postgres_exporter: expected pg_database_size_bytes for app on both servers');
    }
    expectAll(peLast.body, 'pg_exporter_last_scrape_error', 0, 'postgres_exporter');
    if (samples(peLast.body, 'pg_stat_database_xact_commit').filter(([l]) => l.includes('datname="app"')).length < 2) {
      throw new Error('postgres_exporter: expected pg_stat_database_xact_commit for app on both servers');
    }
    expectAll(reLast.body, 'redis_up', 1, 'redis_exporter');
    if ((samples(hkLast.body, 'pg_stat_user_tables_n_dead_tup').find(([l]) => l.includes('relname="chat_logs"'))?.[1] ?? 0) <= 0) {
      throw new Error('housekeeper: expected dead tuples in chat_logs');
    }

    // Idle RSS: after start and the warm-up scrapes, 2 s without traffic.
    await sleep(2_000);
    const loadBefore = loadavg();
    const idleRss = { hk: rssMb(hk.pid), pe: rssMb(pe.pid), re: rssMb(re.pid) };

    // Latency and CPU: N iterations of housekeeper, then postgres_exporter, then
    // redis_exporter, one after the other (never two at once), so they share the same
    // conditions. CPU deltas cover the same interval for all three.
    log(`${SCRAPES} sequential scrapes each`);
    const lat = { hk: [] as number[], pe: [] as number[], re: [] as number[], sum: [] as number[] };
    const cpu0 = { hk: cpuMs(hk.pid), pe: cpuMs(pe.pid), re: cpuMs(re.pid) };
    for (let i = 0; i < SCRAPES; i++) {
      const a = await scrape(hk.url);
      const b = await scrape(pe.url);
      const c = await scrape(re.url);
      lat.hk.push(a.ms);
      lat.pe.push(b.ms);
      lat.re.push(c.ms);
      lat.sum.push(b.ms + c.ms);
    }
    const cpu1 = { hk: cpuMs(hk.pid), pe: cpuMs(pe.pid), re: cpuMs(re.pid) };

    // Database load on the primary: 1 closed-loop scraper, then 8 concurrent ones.
    log(`database load: 1 and ${CONCURRENT} scrapers, ${LOAD_SECONDS} s each`);
    const counter = await statementsCounter(s);
    let idleStatements: number;
    let hkLoad: [Load, Load];
    let peLoad: [Load, Load];
    try {
      const c0 = await counter.read();
      await sleep(1_000);
      idleStatements = (await counter.read()) - c0 - 1;
      hkLoad = [await loadPhase(hk.url, 1, LOAD_SECONDS, counter), await loadPhase(hk.url, CONCURRENT, LOAD_SECONDS, counter)];
      peLoad = [await loadPhase(pe.url, 1, LOAD_SECONDS, counter), await loadPhase(pe.url, CONCURRENT, LOAD_SECONDS, counter)];
    } finally {
      await counter.close();
    }
    const rssAfter = rssMb(hk.pid);

    const m = machine();
    const results: Results = {
      when: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      machine: m,
      load: { before: loadBefore, after: loadavg() },
      versions: {
        node: process.version,
        postgres: version('psql', ['--version'], /(\d+\.\d+)/),
        postgres_exporter: version('/usr/bin/prometheus-postgres-exporter', ['--version'], /version (\S+)/),
        redis_exporter: version('/usr/bin/prometheus-redis-exporter', ['-version'], /Exporter (\S+)/),
        'redis-server': version('redis-server', ['--version'], /v=(\S+)/),
        pgbouncer: version('pgbouncer', ['--version'], /PgBouncer (\S+)/),
      },
      scrapes: SCRAPES,
      warmup: WARMUP,
      hk: {
        median: quantile(lat.hk, 0.5),
        p99: quantile(lat.hk, 0.99),
        cpu: (cpu1.hk - cpu0.hk) / SCRAPES,
        rss: idleRss.hk,
        rssAfter,
        series: seriesCount(hkLast.body),
        bytes: Buffer.byteLength(hkLast.body),
        contentType: hkLast.contentType,
      },
      pe: {
        median: quantile(lat.pe, 0.5),
        p99: quantile(lat.pe, 0.99),
        cpu: (cpu1.pe - cpu0.pe) / SCRAPES,
        rss: idleRss.pe,
        series: seriesCount(peLast.body),
        bytes: Buffer.byteLength(peLast.body),
      },
      re: {
        median: quantile(lat.re, 0.5),
        p99: quantile(lat.re, 0.99),
        cpu: (cpu1.re - cpu0.re) / SCRAPES,
        rss: idleRss.re,
        series: seriesCount(reLast.body),
        bytes: Buffer.byteLength(reLast.body),
      },
      anchorSum: { median: quantile(lat.sum, 0.5), p99: quantile(lat.sum, 0.99) },
      idleStatements,
      hkLoad,
      peLoad,
    };
    const text = report(results);
    process.stdout.write(`\n${text}`);
    fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
    fs.writeFileSync(RESULTS, `# Scrape benchmark results\n\nWritten by \`npm run bench\` (bench/scrape.ts); see bench/README.md.\n\n${text}`);
    log(`written to ${path.relative(ROOT, RESULTS)}`);
  } finally {
    // Exporters first (they hold connections to the servers), then the servers.
    await Promise.allSettled(exporters.map((e) => e.proc.stop(10_000)));
    await stack?.stop();
    await removeTempDir(dir);
  }
}

if (import.meta.main) {
  await main();
}
