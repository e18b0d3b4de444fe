// `npm run demo`: the whole loop on this machine, on loopback. Starts a Postgres primary and
// its streaming replica, PgBouncer and Redis from Debian's packages, an Elasticsearch
// stand-in (see below), demo data (documents, chat logs, conversations, a query cache,
// embeddings and a FAISS index built from them), housekeeper with remediation on (its queue
// and log in the database `housekeeper_state`, the shipped rules/ and calendar), the real
// Prometheus scraping housekeeper and evaluating alerts/, and the real Alertmanager calling
// housekeeper's webhook with a generated token. Prints where to look and how to cause
// trouble, reports alerts and remediations as they happen, and runs until Ctrl-C (or
// --duration). `--port 0` puts housekeeper on any free port (default 9847 when free).
//
// Alert `for:` durations are the shipped ones, except RedisMemoryHigh: 30s instead of 1m, so
// both troubles the demo suggests fire 30 s after they start. The rules are the shipped
// ones unchanged (flush-cache-when-full acts only if the alert still fires 2 m later).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Redis } from 'ioredis';
import { startStack, type Stack } from '../test/harness/stack.ts';
import { startPrometheus, type PrometheusServer } from '../test/harness/prometheus.ts';
import { startAlertmanager, type AlertmanagerServer } from '../test/harness/alertmanager.ts';
import { startElasticsearchMock, type ElasticsearchMock, type MockIndex } from '../test/harness/elasticsearch.ts';
import { freePort } from '../test/harness/ports.ts';
import { ivfImage, ivfIndex } from '../test/helpers/faiss.ts';
import { recordMaintenance } from '../src/faiss/sidecar.ts';
import { parseDuration } from '../src/util/duration.ts';
import { prng } from '../src/util/random.ts';

const root = resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    duration: { type: 'string' },
    port: { type: 'string' },
  },
});

const EMBEDDING_DIM = 64;
const EMBEDDING_TOPICS = 16;
const SCRAPE_INTERVAL = '5s';

async function portFor(preferred: number): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => void freePort().then(res));
    s.listen(preferred, '127.0.0.1', () => s.close(() => res(preferred)));
  });
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Roles as a deployment would have them: the chatbot's role `chatbot` owns the application's
 * tables and runs its queries; housekeeper's role (`housekeeper`, in pg_monitor) is granted
 * `chatbot` so its actions can clean up, archive, vacuum and dump those tables and cancel
 * the application's queries, CREATEDB for the restore test's scratch database, and owns its
 * own state database (queue and remediation log).
 */
async function prepareDatabases(stack: Stack, chatbotPassword: string): Promise<void> {
  await withClient(stack.primary.url({ db: 'postgres' }), async (c) => {
    await c.query(`CREATE ROLE chatbot LOGIN PASSWORD '${chatbotPassword}'`);
    await c.query('GRANT chatbot TO housekeeper');
    await c.query('ALTER ROLE housekeeper CREATEDB');
    await c.query('CREATE DATABASE housekeeper_state OWNER housekeeper');
  });
  await withClient(stack.primary.url({ db: 'app' }), async (c) => {
    await c.query('GRANT CREATE ON SCHEMA public TO chatbot');
  });
}

/** Embeddings that cluster by topic, as documents' embeddings do: topic centre plus noise. */
function embeddings(count: number): number[][] {
  const r = prng(7);
  const centres = Array.from({ length: EMBEDDING_TOPICS }, () => Array.from({ length: EMBEDDING_DIM }, () => r()));
  return Array.from({ length: count }, (_, i) => centres[i % EMBEDDING_TOPICS]!.map((x) => x + (r() - 0.5) * 0.2));
}

async function loadDemoData(stack: Stack): Promise<number> {
  const db = new pg.Client({ connectionString: stack.primary.url({ db: 'app' }) });
  await db.connect();
  let docs = 0;
  try {
    // The Postgres dashboard's "Slowest statements" reads it in the database housekeeper watches.
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await db.query('SET ROLE chatbot');
    await db.query(`
      CREATE TABLE documents (id bigserial PRIMARY KEY, title text NOT NULL, body text NOT NULL,
                              created_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE conversations (id bigserial PRIMARY KEY, user_id int NOT NULL,
                                  started_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE chat_logs (id bigserial PRIMARY KEY, conversation_id bigint NOT NULL,
                              message text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
      CREATE INDEX chat_logs_created_at ON chat_logs (created_at);
      CREATE INDEX conversations_started_at ON conversations (started_at);
      -- The cache's source of truth: answers to frequent questions, by how often they are asked.
      CREATE TABLE cached_answers (id bigint PRIMARY KEY, question text NOT NULL, answer text NOT NULL, hits int NOT NULL);
      -- The FAISS index "docs" holds one vector per row, in id order.
      CREATE TABLE doc_embeddings (id bigint PRIMARY KEY REFERENCES documents (id), embedding real[] NOT NULL);
      INSERT INTO documents (title, body, created_at)
        SELECT 'Document ' || g, repeat('knowledge ', 50), now() - (g % 400) * interval '1 day'
        FROM generate_series(1, 5000) g;
      INSERT INTO conversations (user_id, started_at)
        SELECT g % 300, now() - (g % 120) * interval '1 day' FROM generate_series(1, 3000) g;
      INSERT INTO chat_logs (conversation_id, message, created_at)
        SELECT 1 + g % 3000, 'message ' || g, now() - (g % 150) * interval '1 day'
        FROM generate_series(1, 30000) g;
      INSERT INTO cached_answers (id, question, answer, hits)
        SELECT g, 'question ' || g, '{"answer":"' || repeat('x', 200) || '"}', (100000 / g)::int FROM generate_series(1, 2500) g;
      -- Some churn, so dead tuples show before autovacuum gets to them.
      UPDATE documents SET body = body || '!' WHERE id % 4 = 0;
    `);
    const vectors = embeddings(2000);
    for (let i = 0; i < vectors.length; i += 500) {
      const batch = vectors.slice(i, i + 500);
      await db.query('INSERT INTO doc_embeddings (id, embedding) SELECT id, v::real[] FROM unnest($1::bigint[], $2::text[]) AS t(id, v)', [
        batch.map((_, j) => i + j + 1),
        batch.map((v) => `{${v.join(',')}}`),
      ]);
    }
    docs = vectors.length;
  } finally {
    await db.end();
  }
  // The query cache in db 0 (declared a cache: redis-flush may empty it), sessions in db 1
  // (not a cache: never flushed).
  const cache = new Redis(stack.redis.url(0), { lazyConnect: true });
  const sessions = new Redis(stack.redis.url(1), { lazyConnect: true });
  try {
    await Promise.all([cache.connect(), sessions.connect()]);
    const c = cache.pipeline();
    for (let i = 0; i < 2000; i++) c.set(`cache:query:${i}`, JSON.stringify({ answer: 'x'.repeat(500) }), 'EX', 3600);
    const s = sessions.pipeline();
    for (let i = 0; i < 200; i++) s.set(`session:${i}`, JSON.stringify({ user: i }), 'EX', 1800);
    await Promise.all([c.exec(), s.exec()]);
  } finally {
    cache.disconnect();
    sessions.disconnect();
  }
  return docs;
}

/**
 * The FAISS index "docs": IVF16,Flat over the embeddings table, read back from Postgres so
 * the index holds exactly the table's vectors (position i = the i-th row by id), searched
 * with nprobe 4, and its rebuild recorded in the maintenance sidecar.
 */
async function buildFaissIndex(stack: Stack, path: string): Promise<void> {
  const rows = await withClient(stack.primary.url({ db: 'app' }), async (c) =>
    (await c.query<{ embedding: number[] }>('SELECT embedding FROM doc_embeddings ORDER BY id')).rows,
  );
  const flat = rows.flatMap((r) => r.embedding);
  const started = performance.now();
  const index = ivfIndex(flat, EMBEDDING_DIM, 16);
  writeFileSync(path, ivfImage(index, 4));
  await recordMaintenance(path, 'rebuild', {
    at: new Date().toISOString(),
    vectors: rows.length,
    dimension: EMBEDDING_DIM,
    duration_seconds: (performance.now() - started) / 1000,
  });
}

/**
 * Not Elasticsearch (none can run here): the test harness's HTTP server answering the
 * endpoints housekeeper uses with Elasticsearch's documented shapes. Two weeks of daily log
 * indices and last night's snapshot, so the collector, the alerts and the calendar's
 * Elasticsearch jobs have something to look at.
 */
async function startElasticsearchStandIn(): Promise<ElasticsearchMock> {
  const day = 86_400_000;
  const now = Date.now();
  const indices: MockIndex[] = Array.from({ length: 14 }, (_, i) => {
    const created = now - i * day;
    const name = `logs-${new Date(created).toISOString().slice(0, 10).replaceAll('-', '.')}`;
    return { name, createdMs: created, storeBytes: 50_000_000 + i * 1_000_000, docs: 100_000 + i, shards: 1, segments: i === 0 ? 12 : 1 };
  });
  const lastNight = now - 6 * 3_600_000;
  return startElasticsearchMock({
    clusterName: 'chatbot-logs (stand-in)',
    indices,
    repositories: {
      nightly: [{ name: `nightly-${new Date(lastNight).toISOString().slice(0, 10)}`, state: 'SUCCESS', startMs: lastNight, endMs: lastNight + 60_000, indices: indices.map((i) => i.name) }],
    },
  });
}

/** A light, steady load so the dashboards move: reads through PgBouncer and cache lookups. */
function startLoad(stack: Stack): () => Promise<void> {
  const db = new pg.Pool({ connectionString: stack.pgbouncer.url('app'), max: 2 });
  const redis = new Redis(stack.redis.url(0), { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  db.on('error', () => {});
  let n = 0;
  const timer = setInterval(() => {
    n++;
    void db.query('SELECT count(*) FROM chat_logs WHERE conversation_id = $1', [1 + (n % 3000)]).catch(() => {});
    void redis.get(`cache:query:${n % 2500}`).catch(() => {});
  }, 200);
  return async () => {
    clearInterval(timer);
    redis.disconnect();
    await db.end();
  };
}

interface LogItem {
  id: number;
  rule: string;
  action: string;
  target: string;
  trigger: string;
  alertname: string | null;
  outcome: string;
  reason: string | null;
  error: string | null;
}

/**
 * Reports, as they happen, alerts changing state in Prometheus and remediations finishing
 * in housekeeper's log: the loop, visible from the terminal. Bounded requests; errors skip a turn.
 */
function startWatcher(prom: PrometheusServer, hkUrl: string, token: string, es: ElasticsearchMock): () => void {
  const alertStates = new Map<string, string>();
  const reported = new Set<string>();
  let busy = false;
  const key = (labels: Record<string, string>): string =>
    `${labels['alertname']}{${['target', 'datname', 'kind'].filter((l) => labels[l]).map((l) => `${l}="${labels[l]}"`).join(',')}}`;
  const tick = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      // The stand-in records every request for tests; the demo does not need the history.
      es.requests.splice(0);
      const now = new Map<string, string>();
      for (const a of await prom.alerts()) now.set(key(a.labels), a.state);
      for (const [k, state] of now) if (alertStates.get(k) !== state) console.log(`demo: alert ${k} ${state}`);
      for (const k of alertStates.keys()) if (!now.has(k)) console.log(`demo: alert ${k} resolved`);
      alertStates.clear();
      for (const [k, v] of now) alertStates.set(k, v);
      const r = await fetch(`${hkUrl}/api/remediations?limit=50`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
      if (r.ok) {
        const items = ((await r.json()) as { items: LogItem[] }).items.reverse();
        for (const it of items) {
          if (it.outcome === 'running' || reported.has(`${it.id}`)) continue;
          reported.add(`${it.id}`);
          const why = it.alertname ? `alert ${it.alertname}` : 'calendar';
          const text = (it.error ?? it.reason ?? '').slice(0, 300);
          console.log(`demo: remediation #${it.id} (${why}) ${it.rule} → ${it.action} on ${it.target}: ${it.outcome}${text ? ` — ${text}` : ''}`);
        }
      }
    } catch {
      // A turn missed (a server busy or restarting); the next one catches up.
    } finally {
      busy = false;
    }
  };
  // The first report waits one evaluation: rules evaluated before Prometheus's first scrape
  // see no metrics at all (HousekeeperAbsent pending for one round), which is no news.
  let timer: NodeJS.Timeout | undefined;
  const start = setTimeout(() => {
    void tick();
    timer = setInterval(() => void tick(), 2_000);
  }, parseDuration(SCRAPE_INTERVAL) + 1_000);
  return () => {
    clearTimeout(start);
    clearInterval(timer);
  };
}

async function main(): Promise<void> {
  const durationMs = args.duration ? parseDuration(args.duration) : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'housekeeper-demo-'));
  const token = randomBytes(24).toString('hex');
  const chatbotPassword = randomBytes(12).toString('hex');

  let stack: Stack | undefined;
  let es: ElasticsearchMock | undefined;
  let prom: PrometheusServer | undefined;
  let am: AlertmanagerServer | undefined;
  let service: ChildProcess | undefined;
  let stopLoad: (() => Promise<void>) | undefined;
  let stopWatcher: (() => void) | undefined;
  let stopping = false;
  const logFile = join(dir, 'housekeeper.log');
  const shutdown = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log('\ndemo: stopping ...');
    stopWatcher?.();
    await stopLoad?.();
    // Prometheus and Alertmanager first, so nothing calls a housekeeper that is going away.
    await prom?.destroy().catch(() => {});
    await am?.destroy().catch(() => {});
    if (service && service.exitCode === null && service.signalCode === null) {
      const exited = new Promise((res) => service?.once('exit', res));
      service.kill('SIGTERM');
      await exited;
    }
    await es?.close().catch(() => {});
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
    console.log('demo: stopped; every server it started is gone.');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    console.log('demo: starting Postgres primary + replica, PgBouncer, Redis and an Elasticsearch stand-in on loopback ...');
    // 32 MB, evicting least-recently-used keys as a cache does: a flood of writes pushes it past 75%.
    [stack, es] = await Promise.all([startStack({ redis: { maxmemory: '32mb', maxmemoryPolicy: 'allkeys-lru' } }), startElasticsearchStandIn()]);
    await prepareDatabases(stack, chatbotPassword);
    console.log('demo: loading demo data and building the FAISS index "docs" from its embeddings ...');
    const vectors = await loadDemoData(stack);
    mkdirSync(join(dir, 'faiss'));
    mkdirSync(join(dir, 'backups'));
    const indexPath = join(dir, 'faiss', 'docs.index');
    await buildFaissIndex(stack, indexPath);

    // --port 0: any free port (tests); default: 9847 when free.
    const port = args.port === undefined ? await portFor(9847) : Number(args.port) === 0 ? await freePort() : Number(args.port);
    const configFile = join(dir, 'housekeeper.yml');
    const pgUrl = (p: number, db: string): string => `postgres://housekeeper:\${PG_MONITOR_PASSWORD}@127.0.0.1:${p}/${db}`;
    // Every name the shipped rules and calendar use is defined here. Secrets stay out of the
    // file: the URLs reference environment variables, the webhook token is in the environment.
    writeFileSync(
      configFile,
      `# written by scripts/demo.ts
server: { host: 127.0.0.1, port: ${port} }
postgres:
  - { name: primary, url: "${pgUrl(stack.primary.port, 'app')}" }
  - { name: replica, url: "${pgUrl(stack.replica.port, 'app')}" }
pgbouncer:
  - { name: bouncer, url: "postgres://pgbouncer_admin:\${PGBOUNCER_ADMIN_PASSWORD}@127.0.0.1:${stack.pgbouncer.port}/pgbouncer" }
redis:
  - { name: cache, url: "redis://:\${REDIS_PASSWORD}@127.0.0.1:${stack.redis.port}/0", cache_dbs: [0] }
faiss:
  - name: docs
    path: ${indexPath}
    source: { target: primary, table: doc_embeddings, id_column: id, vector_column: embedding }
    check_interval: 5m
backups:
  directory: ${join(dir, 'backups')}
  kinds:
    database: { pattern: "app-*.dump" }
    vector_index: { pattern: "faiss-*.tar" }
    configuration: { pattern: "config-*.yml" }
# The Elasticsearch stand-in (not Elasticsearch: an HTTP server with its documented answers).
elasticsearch:
  - { name: logs, url: "${es.url}", index_patterns: ["logs-*"], retention: 30d, snapshot_repository: nightly }
state: { url: "${pgUrl(stack.primary.port, 'housekeeper_state')}" }
remediation:
  rules_dir: ${join(root, 'rules')}
actions:
  redis_warm:
    top-queries:
      postgres: primary
      sql: SELECT 'cache:query:' || id AS key, answer AS value FROM cached_answers ORDER BY hits DESC LIMIT 100
      redis: cache
      db: 0
      ttl: 1h
  cleanup:
    chat_logs: { postgres: primary, table: chat_logs, column: created_at, older_than: 90d }
  archive:
    conversations: { postgres: primary, table: conversations, column: started_at, older_than: 30d, archive_table: conversations_archive }
`,
    );
    const out = createWriteStream(logFile);
    service = spawn('bash', [join(root, 'scripts/node.sh'), join(root, 'src/main.ts')], {
      env: {
        ...process.env,
        HOUSEKEEPER_CONFIG: configFile,
        HOUSEKEEPER_WEBHOOK_TOKEN: token,
        PG_MONITOR_PASSWORD: stack.primary.monitorPassword,
        PGBOUNCER_ADMIN_PASSWORD: stack.pgbouncer.adminPassword,
        REDIS_PASSWORD: stack.redis.password,
      },
      // Its JSON log goes to a file; the demo reports what matters (see startWatcher).
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    service.stdout?.pipe(out);
    service.once('exit', (code) => {
      if (!stopping) {
        const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-15).join('\n');
        console.error(`demo: housekeeper exited (${code}); stopping the stack. Its log's last lines:\n${tail}`);
        void shutdown(1);
      }
    });
    const base = `http://127.0.0.1:${port}`;
    let body = '';
    for (let i = 0; i < 150 && !stopping; i++) {
      try {
        const r = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) });
        body = await r.text();
        if (r.ok) break;
      } catch {
        /* not listening yet */
      }
      await new Promise((res) => setTimeout(res, 200));
    }
    if (stopping) return;
    const up = body.split('\n').filter((l) => /^(pg_up|pgbouncer_up|redis_up|elasticsearch_cluster_health_up)\{/.test(l));

    console.log('demo: starting Alertmanager and Prometheus (Prometheus hands targets over on a 5 s tick) ...');
    am = await startAlertmanager({
      webhookUrl: `${base}/hooks/alertmanager`,
      bearerToken: token,
      groupBy: ['alertname', 'target'],
      groupInterval: '5s',
      repeatInterval: '4h',
    });
    prom = await startPrometheus({
      scrapeTargets: [{ job: 'housekeeper', url: `${base}/metrics` }],
      ruleFiles: [join(root, 'alerts/*.yml')],
      alertmanagerUrl: am.url,
      scrapeInterval: SCRAPE_INTERVAL,
      forOverride: { RedisMemoryHigh: '30s' },
    });
    const scraped = await prom.query('up{job="housekeeper"}');
    const promUp = scraped.length === 1 && scraped[0]?.value[1] === '1';

    stopLoad = startLoad(stack);
    stopWatcher = startWatcher(prom, base, token, es);
    console.log(`
demo: the loop is running: Prometheus scrapes housekeeper every ${SCRAPE_INTERVAL} and evaluates alerts/,
Alertmanager calls housekeeper's webhook, housekeeper acts by the rules in rules/.

  housekeeper metrics      ${base}/metrics
  health                   ${base}/healthz   ${base}/readyz
  remediation log          curl -s -H 'Authorization: Bearer ${token}' ${base}/api/remediations
  prometheus               ${prom.url}   (alerts: ${prom.url}/alerts)
  alertmanager             ${am.url}
  config                   ${configFile}
  housekeeper's log        ${logFile}
  elasticsearch stand-in   ${es.url}   (not Elasticsearch: none can run here; a test server with its documented answers)

  targets now:
    ${up.join('\n    ')}
  prometheus sees housekeeper: up{job="housekeeper"} ${promUp ? 1 : 0}
  FAISS index "docs": ${vectors} vectors (IVF16,Flat, nprobe 4) from table doc_embeddings

  cause trouble and watch it healed (this terminal reports alerts and remediations as they happen):
    a full cache:  redis-benchmark -p ${stack.redis.port} -a '${stack.redis.password}' -t set -n 60000 -r 100000000 -d 1000 -q
                   → redis_memory_used_bytes over 75% of maxmemory (32 MB); RedisMemoryHigh fires after 30 s
                     (its for: 1m, shortened for the demo); flush-cache-when-full waits its 2 m delay, then
                     redis-flush empties cache db 0 (sessions, in db 1, are not a cache and are kept) and
                     verifies memory is back under 75%; the alert resolves.
    a long query:  PGPASSWORD='${chatbotPassword}' psql -h 127.0.0.1 -p ${stack.primary.port} -U chatbot app -c 'SELECT pg_sleep(300)'
                   → past 5 s pg_long_running_queries_max_seconds climbs; PostgresLongRunningQueries fires
                     after 30 s; pg-cancel-long-queries cancels it: psql prints "canceling statement due to
                     user request"; the alert resolves.
    a down replica: kill -STOP ${stack.replica.pid ?? '?'}   (then kill -CONT ${stack.replica.pid ?? '?'}); watch pg_up{target="replica"}
  Redis was just started, so RedisRestarted (cold cache) fires after a minute and warm-cache-after-restart
  loads the top 100 answers (actions.redis_warm.top-queries); the runbook's calendar (rules/calendar.yml)
  runs at its times in America/Los_Angeles.

Ctrl-C stops everything.${durationMs !== undefined ? ` (stopping by itself after ${args.duration})` : ''}
`);
    if (durationMs !== undefined) {
      const healthy = promUp && up.length === 5 && up.every((l) => l.endsWith(' 1'));
      setTimeout(() => void shutdown(healthy ? 0 : 1), durationMs);
    }
  } catch (err) {
    console.error('demo: failed:', err instanceof Error ? err.message : err);
    await shutdown(1);
  }
}

void main();
