// `npm run demo`: the local stack with the service wired to it. Starts a Postgres primary and
// its streaming replica, PgBouncer and Redis from Debian's packages on loopback, loads demo
// data (documents, chat logs, conversations, a query cache), starts housekeeper against them,
// prints where to look and how to cause trouble, and runs until Ctrl-C (or --duration).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Redis } from 'ioredis';
import { startStack, type Stack } from '../test/harness/stack.ts';
import { freePort } from '../test/harness/ports.ts';
import { parseDuration } from '../src/util/duration.ts';

const root = resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    duration: { type: 'string' },
    port: { type: 'string' },
  },
});

async function portFor(preferred: number): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => void freePort().then(res));
    s.listen(preferred, '127.0.0.1', () => s.close(() => res(preferred)));
  });
}

async function loadDemoData(stack: Stack): Promise<void> {
  const db = new pg.Client({ connectionString: stack.primary.url({ db: 'app' }) });
  await db.connect();
  try {
    await db.query(`
      CREATE TABLE IF NOT EXISTS documents (id bigserial PRIMARY KEY, title text NOT NULL, body text NOT NULL,
                                            created_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE IF NOT EXISTS conversations (id bigserial PRIMARY KEY, user_id int NOT NULL,
                                                started_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE IF NOT EXISTS chat_logs (id bigserial PRIMARY KEY, conversation_id bigint NOT NULL,
                                            message text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
      CREATE INDEX IF NOT EXISTS chat_logs_created_at ON chat_logs (created_at);
      TRUNCATE documents, conversations, chat_logs;
      INSERT INTO documents (title, body, created_at)
        SELECT 'Document ' || g, repeat('knowledge ', 50), now() - (g % 400) * interval '1 day'
        FROM generate_series(1, 5000) g;
      INSERT INTO conversations (user_id, started_at)
        SELECT g % 300, now() - (g % 120) * interval '1 day' FROM generate_series(1, 3000) g;
      INSERT INTO chat_logs (conversation_id, message, created_at)
        SELECT 1 + g % 3000, 'message ' || g, now() - (g % 150) * interval '1 day'
        FROM generate_series(1, 30000) g;
      -- Some churn, so dead tuples show before autovacuum gets to them.
      UPDATE documents SET body = body || '!' WHERE id % 4 = 0;
    `);
  } finally {
    await db.end();
  }
  const redis = new Redis(stack.redis.url(0), { lazyConnect: true });
  await redis.connect();
  try {
    const pipe = redis.pipeline();
    for (let i = 0; i < 2000; i++) pipe.set(`cache:query:${i}`, JSON.stringify({ answer: 'x'.repeat(500) }), 'EX', 3600);
    for (let i = 0; i < 200; i++) pipe.set(`session:${i}`, JSON.stringify({ user: i }), 'EX', 1800);
    await pipe.exec();
  } finally {
    redis.disconnect();
  }
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

async function main(): Promise<void> {
  const durationMs = args.duration ? parseDuration(args.duration) : undefined;
  console.log('demo: starting Postgres primary + replica, PgBouncer and Redis on loopback ...');
  const stack = await startStack({ redis: { maxmemory: '64mb', maxmemoryPolicy: 'allkeys-lru' } });
  let service: ChildProcess | undefined;
  let stopLoad: (() => Promise<void>) | undefined;
  let stopping = false;
  const shutdown = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log('\ndemo: stopping ...');
    await stopLoad?.();
    if (service && service.exitCode === null) {
      const exited = new Promise((res) => service?.once('exit', res));
      service.kill('SIGTERM');
      await exited;
    }
    await stack.stop();
    console.log('demo: stopped; every server it started is gone.');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    await loadDemoData(stack);
    // --port 0: any free port (tests); default: 9847 when free.
    const port = args.port === undefined ? await portFor(9847) : Number(args.port) === 0 ? await freePort() : Number(args.port);
    const dir = mkdtempSync(join(tmpdir(), 'housekeeper-demo-'));
    const configFile = join(dir, 'housekeeper.yml');
    // Secrets stay out of the file: the URLs reference environment variables.
    writeFileSync(
      configFile,
      `# written by scripts/demo.ts
server: { host: 127.0.0.1, port: ${port} }
postgres:
  - name: primary
    url: postgres://housekeeper:\${PG_MONITOR_PASSWORD}@127.0.0.1:${stack.primary.port}/app
  - name: replica
    url: postgres://housekeeper:\${PG_MONITOR_PASSWORD}@127.0.0.1:${stack.replica.port}/app
pgbouncer:
  - name: bouncer
    url: postgres://pgbouncer_admin:\${PGBOUNCER_ADMIN_PASSWORD}@127.0.0.1:${stack.pgbouncer.port}/pgbouncer
redis:
  - name: cache
    url: redis://:\${REDIS_PASSWORD}@127.0.0.1:${stack.redis.port}/0
    cache_dbs: [0]
`,
    );
    service = spawn('bash', [join(root, 'scripts/node.sh'), join(root, 'src/main.ts')], {
      env: {
        ...process.env,
        HOUSEKEEPER_CONFIG: configFile,
        PG_MONITOR_PASSWORD: stack.primary.monitorPassword,
        PGBOUNCER_ADMIN_PASSWORD: stack.pgbouncer.adminPassword,
        REDIS_PASSWORD: stack.redis.password,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    service.once('exit', (code) => {
      if (!stopping) {
        console.error(`demo: housekeeper exited (${code}); stopping the stack`);
        void shutdown(1);
      }
    });
    const base = `http://127.0.0.1:${port}`;
    let body = '';
    for (let i = 0; i < 100; i++) {
      try {
        const r = await fetch(`${base}/metrics`);
        body = await r.text();
        if (r.ok) break;
      } catch {
        /* not listening yet */
      }
      await new Promise((res) => setTimeout(res, 200));
    }
    const up = body.split('\n').filter((l) => /^(pg_up|pgbouncer_up|redis_up)\{/.test(l));
    stopLoad = startLoad(stack);
    console.log(`
demo: housekeeper is running against the stack.

  metrics    ${base}/metrics
  health     ${base}/healthz   ${base}/readyz
  config     ${configFile}

  targets now:
    ${up.join('\n    ')}

  cause trouble and watch /metrics:
    a long query:   PGPASSWORD='${stack.primary.superPassword}' psql -h 127.0.0.1 -p ${stack.primary.port} -U postgres app -c 'SELECT pg_sleep(30)'
                    then: curl -s ${base}/metrics | grep pg_long_running_queries
    a full cache:   redis-benchmark -p ${stack.redis.port} -a '${stack.redis.password}' -t set -n 300000 -r 10000000 -d 300 -q
                    then: curl -s ${base}/metrics | grep -E 'redis_memory|redis_evicted'
    a down replica: kill -STOP ${stack.replica.pid ?? '?'}   (then kill -CONT ${stack.replica.pid ?? '?'}); watch pg_up{target="replica"}

Ctrl-C stops everything.${durationMs !== undefined ? ` (stopping by itself after ${args.duration})` : ''}
`);
    if (durationMs !== undefined) setTimeout(() => void shutdown(up.every((l) => l.endsWith(' 1')) ? 0 : 1), durationMs);
  } catch (err) {
    console.error('demo: failed:', err instanceof Error ? err.message : err);
    await shutdown(1);
  }
}

void main();
