import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { Redis } from 'ioredis';
import { dashboardsDir } from '../dashboards/generate.ts';
import { dashboards } from '../dashboards/src/index.ts';
import { actions } from '../src/actions/index.ts';
import { publishBackup, type NewManifest } from '../src/backups/manifest.ts';
import { appendRestoreTest } from '../src/backups/restore-tests.ts';
import { recordMaintenance } from '../src/faiss/sidecar.ts';
import { closeTargets, createTargets } from '../src/targets/index.ts';
import { startElasticsearchMock, type ElasticsearchMock, type MockIndex } from './harness/elasticsearch.ts';
import { startPrometheus, type PrometheusServer, type QueryResult } from './harness/prometheus.ts';
import { startStack, type Stack } from './harness/stack.ts';
import { CertFactory, startTlsServer, type TlsServer } from './harness/tls.ts';
import { configFrom, memoryLogger } from './helpers/config.ts';
import { ivfImage, ivfIndex, randomVectors } from './helpers/faiss.ts';
import { notification, startInstance, TOKEN, until, type Instance, type TestAlert } from './helpers/remediation.ts';
import { until as waitUntil } from './helpers/wait.ts';

// The committed dashboards show data when housekeeper is scraped. The real servers (Postgres
// primary and replica, PgBouncer, Redis), the Elasticsearch stand-in, TLS endpoints, a FAISS
// index over a source table, a backup directory with every kind, and housekeeper with
// remediation on, scraped by a real Prometheus 2.42 every second. Then every panel query of
// every dashboards/*.json, with Grafana's variables substituted, must return at least one
// series with a number in it: stat and table queries (Grafana's instant queries) as instant
// queries, time series as range queries over what Prometheus holds, stepped by $__interval
// as Grafana steps them. Panels that cannot have data here are in ALLOWLIST, each with its
// reason and a check that can fail instead.
//
// The stack is a healthy one that has lived a little: a light load through PgBouncer and
// Redis (as the chatbot makes), last night's backups, a restore test, an index rebuild
// recorded by its sidecar and an optimize by faiss-optimize itself, two remediations run
// through the webhook (a configured program),
// and one certificate endpoint whose chain does not verify (so the verification error table
// is checked against real output, not only parsed).

const PG_BIN = process.env['HOUSEKEEPER_PG_BIN'] ?? '/usr/lib/postgresql/15/bin';
const run = promisify(execFile);

/** Prometheus's scrape interval here, seconds. */
const SCRAPE_S = 1;
/**
 * Grafana's interval variables for a short scrape interval. $__interval is the range query's
 * step: Grafana's range / max data points, never below the data source's scrape interval;
 * on a 12 h dashboard over 15 s scrapes that is a few scrapes, so 5 here (an increase()
 * over it sees a few samples, as in production). $__rate_interval is Grafana's
 * max($__interval + scrape interval, 4 × scrape interval). $__range is the whole time range
 * (set once Prometheus has data: the time it has been scraping).
 */
const INTERVAL_S = 5 * SCRAPE_S;
const RATE_INTERVAL_S = Math.max(INTERVAL_S + SCRAPE_S, 4 * SCRAPE_S);
/** Bounds the wait for every panel to have data (a loaded 2-core machine included). */
const DATA_BOUND_MS = 60_000;

// ---------------------------------------------------------------------------------------
// The dashboards as Grafana imports them: the committed files.

interface Target {
  expr?: string;
  refId?: string;
  instant?: boolean;
}
interface Panel {
  id?: number;
  type: string;
  title?: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: unknown;
  allValue?: string;
  includeAll?: boolean;
}
interface Dashboard {
  panels: Panel[];
  templating: { list: Variable[] };
}

const committed = dashboards.map((s) => ({ file: s.file, d: JSON.parse(readFileSync(resolve(dashboardsDir, s.file), 'utf8')) as Dashboard }));

interface PanelQuery {
  file: string;
  title: string;
  refId: string;
  expr: string;
  instant: boolean;
  /** Where, for messages: `file: "title" refId`. */
  where: string;
}

function panelQueries(): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const { file, d } of committed) {
    const walk = (ps: Panel[]): void => {
      for (const p of ps) {
        if (p.type === 'row') walk(p.panels ?? []);
        for (const t of p.targets ?? []) {
          if (t.expr === undefined) continue;
          const title = p.title ?? '';
          const refId = t.refId ?? '';
          out.push({ file, title, refId, expr: t.expr, instant: t.instant === true, where: `${file}: "${title}" ${refId}` });
        }
      }
    };
    walk(d.panels);
  }
  return out;
}

const queries = panelQueries();

/**
 * Grafana's interpolation: a multi-value variable set to All becomes its allValue (every
 * dashboard variable has one: ".*"), the interval variables become durations. An unknown
 * variable is an error, so a new one is not silently sent as text.
 */
function interpolate(expr: string, rangeS: number): string {
  const allValues = new Map<string, string>();
  for (const { d } of committed) for (const v of d.templating.list) if (v.type === 'query' && v.includeAll && v.allValue !== undefined) allValues.set(v.name, v.allValue);
  const durations: Record<string, string> = { __interval: `${INTERVAL_S}s`, __rate_interval: `${RATE_INTERVAL_S}s`, __range: `${rangeS}s` };
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    const value = durations[name] ?? allValues.get(name);
    if (value === undefined) throw new Error(`unknown dashboard variable ${whole} in: ${expr}`);
    return value;
  });
}

/** Metric names a query selects: names followed by a matcher block or a range. */
function metricNames(expr: string): string[] {
  const names = new Set<string>();
  const code = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  for (const m of code.matchAll(/([a-zA-Z_:][\w:]*)\s*[{[]/g)) names.add(m[1]!);
  return [...names];
}

// ---------------------------------------------------------------------------------------
// Panels that cannot show data here. Each entry: the panels (file and title; every query of
// a panel with that title), why, and what is checked instead.

type Instead =
  /** Every metric the panel uses is node_exporter's (node_*), and housekeeper exports none of them. */
  { kind: 'node_exporter' };

interface Allowed {
  file: string;
  title: string;
  reason: string;
  instead: Instead;
}

const ALLOWLIST: Allowed[] = [
  ...['CPU', 'Memory', 'Disk', 'Network'].map(
    (title): Allowed => ({ file: 'overview.json', title, reason: 'host panels read node_exporter, which housekeeper does not re-implement and this machine does not have', instead: { kind: 'node_exporter' } }),
  ),
];

function allowed(q: PanelQuery): Allowed | undefined {
  return ALLOWLIST.find((a) => a.file === q.file && a.title === q.title);
}

// ---------------------------------------------------------------------------------------
// The stack

let stack: Stack | undefined;
let es: ElasticsearchMock | undefined;
let certs: CertFactory | undefined;
const tlsServers: TlsServer[] = [];
let hk: Instance | undefined;
let prom: PrometheusServer | undefined;
let stopLoad: (() => Promise<void>) | undefined;
let work: string | undefined;
/** When Prometheus started scraping, ms since epoch. */
let promStart = 0;

const DIM = 16;
const VECTORS = 400;

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The chatbot's tables, embeddings for the FAISS index, churn for dead rows, a vacuum; the state database. */
async function prepareDatabases(s: Stack, vectors: number[]): Promise<void> {
  await withClient(s.primary.url({ db: 'postgres' }), (c) => c.query('CREATE DATABASE housekeeper_state'));
  await withClient(s.primary.url({ db: 'app' }), async (c) => {
    await c.query(`
      CREATE EXTENSION pg_stat_statements;
      CREATE TABLE documents (id bigserial PRIMARY KEY, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE doc_embeddings (id bigint PRIMARY KEY, embedding real[] NOT NULL);
      GRANT SELECT ON doc_embeddings TO housekeeper;
      CREATE INDEX ON documents (created_at);
      GRANT SELECT ON documents TO housekeeper;
      INSERT INTO documents (body) SELECT repeat('knowledge ', 20) FROM generate_series(1, 2000);
    `);
    await c.query('VACUUM ANALYZE documents');
    await c.query("UPDATE documents SET body = body || '!' WHERE id % 4 = 0");
    const rows = Array.from({ length: VECTORS }, (_, i) => `{${vectors.slice(i * DIM, (i + 1) * DIM).join(',')}}`);
    await c.query('INSERT INTO doc_embeddings (id, embedding) SELECT i, v::real[] FROM unnest($1::text[]) WITH ORDINALITY AS t(v, i)', [rows]);
  });
}

/**
 * This month's optimize, by the action itself (it needs no server): the index was written
 * with nprobe 4, which misses the default recall floor on these vectors, so it is raised and
 * "optimize" recorded in the sidecar (the "Since optimize" panel).
 */
async function optimizeIndex(indexPath: string): Promise<void> {
  const config = configFrom(`faiss:\n  - { name: docs, path: "${indexPath}" }\n`);
  const { log } = memoryLogger();
  const targets = createTargets(config, log);
  try {
    const optimize = actions.find((a) => a.name === 'faiss-optimize');
    assert.ok(optimize);
    const r = await optimize.run({ targets, config, log }, { index: 'docs' }, AbortSignal.timeout(60_000));
    assert.equal(r.details?.['optimized'], true, r.summary);
  } finally {
    await closeTargets(targets);
  }
}

/** Last night's backups of every kind (a real pg_dump for the database), and a restore test two days ago. */
async function prepareBackups(s: Stack, dir: string): Promise<void> {
  const lastNight = new Date(Date.now() - 6 * 3_600_000);
  const publish = async (name: string, m: NewManifest, write: (tmp: string) => Promise<void>): Promise<void> => {
    const tmp = join(dir, `.${name}.partial`);
    await write(tmp);
    await publishBackup(tmp, name, m);
  };
  const day = lastNight.toISOString().slice(0, 10);
  await publish(
    `app-${day}.dump`,
    { kind: 'database', format: 'pg_dump_custom', tool: { name: 'pg_dump', version: '15' }, source: { type: 'postgres', target: 'primary', database: 'app' }, createdAt: lastNight },
    async (tmp) => void (await run(join(PG_BIN, 'pg_dump'), ['-Fc', '-f', tmp, s.primary.url({ db: 'app' })], { timeout: 60_000 })),
  );
  const files: Array<[NewManifest['kind'], string]> = [
    ['vector_index', `faiss-${day}.index`],
    ['configuration', `config-${day}.tar`],
    ['document_store', `docs-${day}.tar.gz`],
    ['secrets', `secrets-${day}.age`],
  ];
  for (const [kind, name] of files) {
    await publish(name, { kind, format: 'file', tool: { name: 'housekeeper', version: '0.1.0' }, source: { type: 'file', path: `/srv/${kind}` }, createdAt: lastNight }, async (tmp) =>
      writeFileSync(tmp, `${kind} backup\n`.repeat(100)),
    );
  }
  const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
  await appendRestoreTest(dir, {
    record_version: 1,
    kind: 'database',
    backup: `app-${day}.dump`,
    started_at: new Date(twoDaysAgo.getTime() - 60_000).toISOString(),
    finished_at: twoDaysAgo.toISOString(),
    success: true,
    target: 'primary',
  });
}

/** Two weeks of daily log indices and last night's snapshot (as in the demo). */
function startElasticsearch(): Promise<ElasticsearchMock> {
  const day = 86_400_000;
  const now = Date.now();
  const indices: MockIndex[] = Array.from({ length: 14 }, (_, i) => {
    const created = now - i * day;
    return { name: `logs-${new Date(created).toISOString().slice(0, 10).replaceAll('-', '.')}`, createdMs: created, storeBytes: 50_000_000 + i, docs: 100_000 + i, shards: 1 };
  });
  const lastNight = now - 6 * 3_600_000;
  return startElasticsearchMock({
    indices,
    repositories: { nightly: [{ name: 'nightly-1', state: 'SUCCESS', startMs: lastNight, endMs: lastNight + 60_000, indices: indices.map((i) => i.name) }] },
  });
}

/** A CA-signed endpoint (verifies against its root), its chain as a file, and a self-signed endpoint (does not verify). */
async function startCertificates(): Promise<{ rootFile: string; chainFile: string; verified: number; selfSigned: number }> {
  const f = await CertFactory.create();
  certs = f;
  const DAY = 86_400;
  const now = Math.floor(Date.now() / 1000);
  const root = await f.issue({ cn: 'Dashboards Test Root', ca: true, serial: 0x1001n, notBefore: now - DAY, notAfter: now + 3650 * DAY });
  const leaf = await f.issue({ cn: 'localhost', san: ['DNS:localhost', 'IP:127.0.0.1'], serial: 0x2002n, notBefore: now - DAY, notAfter: now + 90 * DAY }, root);
  const self = await f.issue({ cn: 'self.test', san: ['DNS:self.test', 'IP:127.0.0.1'], serial: 0x3003n, notBefore: now - DAY, notAfter: now + 90 * DAY });
  const verified = await startTlsServer(leaf);
  tlsServers.push(verified);
  const selfSigned = await startTlsServer(self);
  tlsServers.push(selfSigned);
  return { rootFile: await f.write('root.pem', root), chainFile: await f.write('chain.pem', leaf), verified: verified.port, selfSigned: selfSigned.port };
}

/** A light, steady load, as the chatbot makes: reads through PgBouncer, cache hits and misses in Redis. */
function startLoad(s: Stack): () => Promise<void> {
  const db = new pg.Pool({ connectionString: s.pgbouncer.url('app'), max: 2 });
  const redis = new Redis(s.redis.url(0), { maxRetriesPerRequest: 1 });
  db.on('error', () => {});
  redis.on('error', () => {});
  let n = 0;
  const timer = setInterval(() => {
    n++;
    void db.query('SELECT count(*) FROM documents WHERE id % 100 = $1', [n % 100]).catch(() => {});
    void redis.get(`cache:query:${n % 40}`).catch(() => {}); // half of them exist
  }, 200);
  return async () => {
    clearInterval(timer);
    redis.disconnect();
    await db.end();
  };
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'hk-dashboards-data-'));
  const faissDir = join(work, 'faiss');
  const backupDir = join(work, 'backups');
  mkdirSync(faissDir);
  mkdirSync(backupDir);
  const vectors = randomVectors(VECTORS, DIM, 11);

  // Each kept as soon as it is up, so after() stops it whatever else fails.
  const [s, esMock, tls] = await Promise.all([
    startStack({ redis: { maxmemory: '32mb', maxmemoryPolicy: 'allkeys-lru' } }).then((x) => (stack = x)),
    startElasticsearch().then((x) => (es = x)),
    startCertificates(),
  ]);
  const esUrl = esMock.url;
  await prepareDatabases(s, vectors);
  await prepareBackups(s, backupDir);
  const cache = new Redis(s.redis.url(0), { lazyConnect: true });
  try {
    await cache.connect();
    const p = cache.pipeline();
    for (let i = 0; i < 20; i++) p.set(`cache:query:${i}`, JSON.stringify({ answer: i }), 'EX', 3600);
    await p.exec();
  } finally {
    cache.disconnect();
  }

  // The index holds the table's vectors in id order, as a rebuild makes it, and says so in its sidecar.
  const indexPath = join(faissDir, 'docs.index');
  writeFileSync(indexPath, ivfImage(ivfIndex(vectors, DIM, 8), 4));
  await recordMaintenance(indexPath, 'rebuild', { at: new Date().toISOString(), vectors: VECTORS, dimension: DIM });
  await optimizeIndex(indexPath);

  const rules = join(work, 'rules');
  mkdirSync(rules);
  writeFileSync(
    join(rules, 'rules.yml'),
    `
rules:
  - name: dashboards-test-fix
    matchers: ['alertname="DashboardsTestTrouble"']
    action: exec
    params: { program: fix }
    cooldown: 0s
`,
  );
  hk = await startInstance(
    `
server: { scrape_timeout_offset: 200ms }
postgres:
  - { name: primary, url: "${s.primary.url({ db: 'app', user: 'housekeeper' })}" }
  - { name: replica, url: "${s.replica.url({ db: 'app', user: 'housekeeper' })}" }
pgbouncer:
  - { name: bouncer, url: "${s.pgbouncer.adminUrl()}" }
redis:
  - { name: cache, url: "${s.redis.url(0)}", cache_dbs: [0] }
faiss:
  - name: docs
    path: ${indexPath}
    source: { target: primary, table: doc_embeddings, id_column: id, vector_column: embedding }
backups:
  directory: ${backupDir}
  kinds:
    database: { pattern: "app-*.dump" }
    vector_index: { pattern: "faiss-*.index" }
    configuration: { pattern: "config-*.tar" }
    document_store: { pattern: "docs-*.tar.gz" }
    secrets: { pattern: "secrets-*.age" }
elasticsearch:
  - { name: logs, url: "${esUrl}", index_patterns: ["logs-*"], retention: 30d, snapshot_repository: nightly }
certificates:
  - { name: api, host: 127.0.0.1, port: ${tls.verified}, ca_file: ${tls.rootFile} }
  - { name: api-file, file: ${tls.chainFile} }
  - { name: self-signed, host: 127.0.0.1, port: ${tls.selfSigned} }
state: { url: "${s.primary.url({ db: 'housekeeper_state' })}" }
remediation: { rules_dir: ${rules} }
actions:
  exec:
    fix: { argv: ["/bin/true"], verify_argv: ["/bin/true"] }
  cleanup:
    documents: { postgres: primary, table: documents, column: created_at, older_than: 90d }
`,
    actions,
  );
  // A first scrape starts the background checks (FAISS, backups) before Prometheus's first one.
  await fetch(`${hk.url}/metrics`, { signal: AbortSignal.timeout(30_000) }).then((r) => r.text());
  stopLoad = startLoad(s);

  // Two alerts through the webhook, each fixed by its rule: one before Prometheus's first
  // scrape (its counter series exists from then on), one while Prometheus watches.
  const inst = hk;
  const fixes = async (n: number): Promise<void> => {
    await until(`${n} remediations logged as fixed`, async () => {
      const r = await fetch(`${inst.url}/api/remediations?outcome=fixed`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(10_000) });
      return ((await r.json()) as { items: unknown[] }).items.length >= n;
    });
  };
  const alert = (i: number): TestAlert => ({ labels: { alertname: 'DashboardsTestTrouble', target: 'primary', run: String(i) }, startsAt: new Date().toISOString() });
  const posted = await inst.post(notification([alert(1)]));
  assert.equal(posted.status, 202, JSON.stringify(posted.json));
  await fixes(1);
  promStart = Date.now();
  prom = await startPrometheus({ scrapeTargets: [{ job: 'housekeeper', url: `${inst.url}/metrics` }], scrapeInterval: `${SCRAPE_S}s` });
  const p = prom!;
  await until('Prometheus scraped the first remediation', async () => (await p.query('housekeeper_remediations_total{outcome="fixed"} == 1')).length === 1);
  assert.equal((await inst.post(notification([alert(2)]))).status, 202);
  await fixes(2);
});

after(async () => {
  // Prometheus first, so nothing scrapes a housekeeper that is going away.
  await prom?.destroy();
  await stopLoad?.();
  await hk?.close();
  for (const t of tlsServers) await t.close();
  await certs?.close();
  await es?.close();
  await stack?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------

/** Whether a result holds at least one series (or scalar) with a number that is not NaN. */
function hasData(r: QueryResult): boolean {
  const num = (v: string): boolean => !Number.isNaN(Number(v));
  switch (r.resultType) {
    case 'vector':
      return r.result.some((s) => num(s.value[1]));
    case 'matrix':
      return r.result.some((s) => s.values.some(([, v]) => num(v)));
    case 'scalar':
      return num(r.result[1]);
    default:
      return false;
  }
}

/** The panel query as Grafana sends it: instant at now, or over the whole range stepped by $__interval. */
async function evaluate(p: PrometheusServer, q: PanelQuery): Promise<QueryResult> {
  const now = Date.now();
  const rangeS = Math.max(RATE_INTERVAL_S, Math.ceil((now - promStart) / 1000) + 1);
  const expr = interpolate(q.expr, rangeS);
  if (q.instant) return p.queryRaw(expr, now);
  return { resultType: 'matrix', result: await p.queryRange(expr, { start: promStart, end: now, step: INTERVAL_S }) };
}

test('the allowlist names panels that exist, and only panels', () => {
  assert.ok(queries.length > 150, `found ${queries.length} panel queries`);
  for (const a of ALLOWLIST) {
    assert.ok(queries.some((q) => q.file === a.file && q.title === a.title), `allowlisted ${a.file}: "${a.title}" is no panel`);
    assert.ok(a.reason.length > 20, `${a.file}: "${a.title}" says why`);
  }
});

async function labelValues(p: PrometheusServer, selector: string, label: string): Promise<string[]> {
  const qs = new URLSearchParams({ 'match[]': selector, start: String(promStart / 1000), end: String(Date.now() / 1000) });
  const r = await fetch(`${p.url}/api/v1/label/${label}/values?${qs}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await r.json()) as { status: string; data: string[] };
  assert.equal(body.status, 'success', `label_values(${selector}, ${label})`);
  return body.data;
}

interface Check {
  where: string;
  /** Whether it has data now. */
  ok(p: PrometheusServer): Promise<boolean>;
  /** What to show when it never had. */
  shown: string;
}

/** Every variable's values (what Grafana lists in its dropdown), and every panel query not on the allowlist. */
function checks(): Check[] {
  const out: Check[] = [];
  for (const { file, d } of committed) {
    for (const v of d.templating.list) {
      if (v.type !== 'query') continue;
      const m = /^label_values\((.*),\s*([a-zA-Z_]\w*)\)$/s.exec(String(v.query));
      assert.ok(m, `${file}: $${v.name}: label_values(selector, label)`);
      const [, selector, label] = m as unknown as [string, string, string];
      // node_exporter's hosts: see the host panels in ALLOWLIST.
      if (/^node_\w+$/.test(selector)) continue;
      out.push({ where: `${file}: $${v.name}`, shown: String(v.query), ok: async (p) => (await labelValues(p, selector, label)).length > 0 });
    }
  }
  for (const q of queries) {
    if (allowed(q)) continue;
    out.push({ where: q.where, shown: q.expr, ok: async (p) => hasData(await evaluate(p, q)) });
  }
  return out;
}

test('every dashboard variable lists values and every panel shows data from housekeeper scraped by Prometheus', async () => {
  const p = prom!;
  const pending = checks();
  assert.ok(pending.length > 150, `${pending.length} checks`);
  const missing = (): string[] => pending.map((c) => `${c.where}: ${c.shown}`);
  // Polls until each has had data once: data arrives as Prometheus scrapes and the background
  // checks (FAISS, backups) finish, not at a time this test could know.
  await waitUntil('data in every variable and panel', async () => {
    for (let i = pending.length - 1; i >= 0; i--) if (await pending[i]!.ok(p)) pending.splice(i, 1);
    return pending.length === 0;
  }, {
    timeoutMs: DATA_BOUND_MS,
    intervalMs: 1_000,
    detail: () => `no data (fix the query, or add the panel to ALLOWLIST with the reason):\n${missing().join('\n')}`,
  });
  assert.deepEqual(missing(), [], 'no data (fix the query, or add the panel to ALLOWLIST with the reason)');
});

test('remediation counts include the run that created the counter\'s series', async () => {
  // Two runs, the first one before Prometheus's first scrape: increase() alone sees only the
  // second (the series appears at 1); the dashboards count a series born in the range from 0.
  const p = prom!;
  const byTitle = (file: string, title: string): PanelQuery => queries.find((q) => q.file === file && q.title === title)!;
  for (const [file, title] of [
    ['remediations.json', 'Fixed in range'],
    ['overview.json', 'Remediations fixed (24h)'],
  ] as const) {
    const r = await evaluate(p, byTitle(file, title));
    assert.equal(r.resultType, 'vector');
    assert.deepEqual(r.result.map((s) => Number(s.value[1])), [2], `${file}: "${title}"`);
  }
  const table = await evaluate(p, byTitle('remediations.json', 'Remediations in range'));
  assert.equal(table.resultType, 'vector');
  assert.deepEqual(
    table.result.map((s) => [s.metric, Number(s.value[1])]),
    [[{ rule: 'dashboards-test-fix', action: 'exec', outcome: 'fixed' }, 2]],
  );
  const failed = await evaluate(p, byTitle('remediations.json', 'Failed in range'));
  assert.equal(failed.resultType, 'vector');
  assert.deepEqual(failed.result.map((s) => Number(s.value[1])), [0]);
});

test('allowlisted panels are empty here, and what they rely on is checked instead', async () => {
  const p = prom!;
  const body = await (await fetch(`${hk!.url}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
  const families = new Set([...body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  for (const q of queries) {
    const a = allowed(q);
    if (!a) continue;
    // A panel that shows data does not belong on the list.
    assert.equal(hasData(await evaluate(p, q)), false, `${q.where} has data now: take it off ALLOWLIST`);
    assert.equal(a.instead.kind, 'node_exporter');
    const names = metricNames(q.expr);
    assert.ok(names.length > 0, `${q.where}: names metrics`);
    for (const n of names) {
      assert.match(n, /^node_/, `${q.where}: ${n} is not node_exporter's`);
      assert.ok(!families.has(n), `${q.where}: housekeeper exports ${n} itself`);
    }
  }
});
