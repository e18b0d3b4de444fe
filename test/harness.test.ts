// The test harness itself: real servers start, talk, restart, and leave nothing behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { forceNextPorts } from './harness/ports.ts';
import { startPostgres, startReplica } from './harness/postgres.ts';
import { startPgBouncer } from './harness/pgbouncer.ts';
import { startRedis } from './harness/redis.ts';
import { startStack, type Stack } from './harness/stack.ts';
import { childPids, harnessTmpRoot, livePids, pidAlive, sweepStaleTempDirs } from './harness/proc.ts';
import { eventuallyWithin } from './helpers/wait.ts';

async function query<R extends pg.QueryResultRow = pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<R[]> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

const eventually = eventuallyWithin(10_000);

/** Sends raw RESP commands on a fresh connection and returns the first reply line of each. */
function redisRaw(port: number, ...commands: string[][]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    sock.setTimeout(5000, () => sock.destroy(new Error('timeout')));
    sock.once('error', reject);
    sock.once('connect', () => {
      for (const c of commands) sock.write(`*${c.length}\r\n${c.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\r\n').filter((l) => l !== '');
      if (lines.length >= commands.length) {
        sock.destroy();
        resolve(lines.slice(0, commands.length));
      }
    });
  });
}

async function redisPing(url: string): Promise<string> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    return await r.ping();
  } finally {
    r.disconnect();
  }
}

function allGone(pids: readonly number[]): boolean {
  return pids.every((p) => !pidAlive(p));
}

describe('stack', () => {
  let stack: Stack;
  const timings: Record<string, number> = {};

  before(async () => {
    const t0 = performance.now();
    stack = await startStack();
    timings['startStack'] = Math.round(performance.now() - t0);
  });

  after(async () => {
    await stack?.stop().catch(() => {});
    console.log('harness timings (ms):', JSON.stringify(timings));
  });

  test('starts all four on distinct loopback ports', () => {
    const ports = [stack.primary.port, stack.replica.port, stack.pgbouncer.port, stack.redis.port];
    assert.equal(new Set(ports).size, 4);
    assert.equal(stack.primary.host, '127.0.0.1');
    assert.match(stack.primary.url(), /^postgres:\/\/postgres:[0-9a-f]+@127\.0\.0\.1:\d+\/postgres$/);
    assert.match(stack.primary.url({ db: 'app', user: 'housekeeper' }), /^postgres:\/\/housekeeper:[0-9a-f]+@127\.0\.0\.1:\d+\/app$/);
    assert.notEqual(stack.primary.superPassword, stack.primary.monitorPassword);
    assert.equal(stack.replica.superPassword, stack.primary.superPassword);
    assert.match(stack.redis.url(), /^redis:\/\/:[0-9a-f]+@127\.0\.0\.1:\d+\/0$/);
    assert.match(stack.pgbouncer.adminUrl(), /^postgres:\/\/pgbouncer_admin:[0-9a-f]+@127\.0\.0\.1:\d+\/pgbouncer$/);
  });

  test('primary: configured as specified, housekeeper role is a pg_monitor member', async () => {
    const [s] = await query(
      stack.primary.url(),
      `SELECT current_setting('wal_level') AS wal_level, current_setting('shared_preload_libraries') AS spl,
              current_setting('listen_addresses') AS listen, current_setting('fsync') AS fsync,
              pg_is_in_recovery() AS recovery,
              (SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements')::int AS pss,
              (SELECT datdba::regrole::text FROM pg_database WHERE datname = 'app') AS app_owner`,
    );
    assert.deepEqual(s, {
      wal_level: 'replica',
      spl: 'pg_stat_statements',
      listen: '127.0.0.1',
      fsync: 'off',
      recovery: false,
      pss: 1,
      app_owner: 'postgres',
    });
    const rows = await query(
      stack.primary.url({ user: 'housekeeper' }),
      `SELECT pg_has_role('housekeeper', 'pg_monitor', 'member') AS monitor,
              (SELECT count(*) FROM pg_stat_statements)::int >= 0 AS pss_readable,
              (SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming')::int AS streaming`,
    );
    assert.deepEqual(rows[0], { monitor: true, pss_readable: true, streaming: 1 });
  });

  test('wrong password is refused over TCP (scram)', async () => {
    const bad = stack.primary.url().replace(stack.primary.superPassword, 'nope');
    await assert.rejects(query(bad, 'SELECT 1'), /password authentication failed/);
  });

  test('a write on the primary appears on the replica', async () => {
    await query(stack.primary.url({ db: 'app' }), 'CREATE TABLE harness_t (id int PRIMARY KEY, v text)');
    await query(stack.primary.url({ db: 'app' }), `INSERT INTO harness_t VALUES (1, 'one')`);
    const v = await eventually('row on replica', async () => {
      const rows = await query<{ v: string }>(stack.replica.url({ db: 'app' }), 'SELECT v FROM harness_t WHERE id = 1').catch(
        () => [],
      );
      return rows[0]?.v;
    });
    assert.equal(v, 'one');
    const [r] = await query(stack.replica.url({ user: 'housekeeper' }), 'SELECT pg_is_in_recovery() AS r');
    assert.equal(r?.['r'], true);
  });

  test('pgbouncer: queries pass through to the primary; the admin console answers', async () => {
    const [row] = await query(stack.pgbouncer.url(), 'SELECT current_database() AS db, $1::int + 1 AS n, inet_server_port() AS port', [41]);
    assert.deepEqual(row, { db: 'app', n: 42, port: stack.primary.port });
    const [pgRow] = await query(stack.pgbouncer.url('postgres'), 'SELECT current_database() AS db');
    assert.equal(pgRow?.['db'], 'postgres');

    const pools = await query<{ database: string; user: string; pool_mode: string }>(stack.pgbouncer.adminUrl(), 'SHOW POOLS');
    const app = pools.find((p) => p.database === 'app' && p.user === 'postgres');
    assert.ok(app, `no app pool in ${JSON.stringify(pools)}`);
    assert.equal(app.pool_mode, 'transaction');
    const stats = await query<{ database: string; total_xact_count: string }>(stack.pgbouncer.adminUrl(), 'SHOW STATS');
    assert.ok(Number(stats.find((s) => s.database === 'app')?.total_xact_count) >= 1);
    const cfg = await query<{ key: string; value: string }>(stack.pgbouncer.adminUrl(), 'SHOW CONFIG');
    assert.equal(cfg.find((c) => c.key === 'default_pool_size')?.value, '5');
  });

  test('redis: PING with the password, refused without', async () => {
    assert.equal(await redisPing(stack.redis.url()), 'PONG');
    assert.equal(await redisPing(stack.redis.url(3)), 'PONG');
    const [noAuth] = await redisRaw(stack.redis.port, ['PING']);
    assert.match(noAuth!, /^-NOAUTH/);
    const [wrong, after] = await redisRaw(stack.redis.port, ['AUTH', 'wrong'], ['PING']);
    assert.match(wrong!, /^-WRONGPASS/);
    assert.match(after!, /^-NOAUTH/);
    assert.deepEqual(await redisRaw(stack.redis.port, ['AUTH', stack.redis.password], ['PING']), ['+OK', '+PONG']);
  });

  test('redis: stop() then start() brings it back on the same port (empty: no persistence)', async () => {
    const r = new Redis(stack.redis.url());
    await r.set('k', 'v');
    r.disconnect();
    const pid = stack.redis.pid;
    const port = stack.redis.port;
    assert.ok(pid);
    const t0 = performance.now();
    await stack.redis.stop();
    timings['redis.stop'] = Math.round(performance.now() - t0);
    assert.equal(stack.redis.pid, undefined);
    assert.ok(!pidAlive(pid), 'redis pid still alive after stop()');
    await stack.redis.stop(); // idempotent
    await assert.rejects(redisPing(stack.redis.url()));
    const t1 = performance.now();
    await stack.redis.start();
    timings['redis.start'] = Math.round(performance.now() - t1);
    assert.equal(stack.redis.port, port);
    assert.equal(await redisPing(stack.redis.url()), 'PONG');
    const r2 = new Redis(stack.redis.url());
    assert.equal(await r2.get('k'), null);
    r2.disconnect();
  });

  test('replica: stop() then start() brings it back, in recovery, streaming again', async () => {
    const pid = stack.replica.pid;
    assert.ok(pid);
    const t0 = performance.now();
    await stack.replica.stop();
    timings['replica.stop'] = Math.round(performance.now() - t0);
    assert.ok(!pidAlive(pid), 'postmaster still alive after stop()');
    await assert.rejects(query(stack.replica.url(), 'SELECT 1'));
    await query(stack.primary.url({ db: 'app' }), `INSERT INTO harness_t VALUES (2, 'two')`);
    const t1 = performance.now();
    await stack.replica.start();
    timings['replica.start'] = Math.round(performance.now() - t1);
    const v = await eventually('row 2 on replica', async () => {
      const rows = await query<{ v: string }>(stack.replica.url({ db: 'app' }), 'SELECT v FROM harness_t WHERE id = 2');
      return rows[0]?.v;
    });
    assert.equal(v, 'two');
    const [r] = await query(stack.replica.url(), 'SELECT pg_is_in_recovery() AS r');
    assert.equal(r?.['r'], true);
  });

  test('primary and pgbouncer: stop() then start()', async () => {
    await stack.pgbouncer.stop();
    await assert.rejects(query(stack.pgbouncer.url(), 'SELECT 1'));
    await stack.pgbouncer.start();
    await stack.primary.stop();
    await stack.primary.stop();
    await stack.primary.start();
    const row = await eventually('query through pgbouncer after primary restart', async () =>
      (await query(stack.pgbouncer.url(), 'SELECT count(*)::int AS n FROM harness_t'))[0],
    );
    assert.equal(row['n'], 2);
    await eventually('replica streaming again', async () => {
      const rows = await query<{ n: number }>(
        stack.primary.url(),
        `SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'`,
      );
      return rows[0]?.n === 1 ? true : undefined;
    });
  });

  test('stop() leaves no process and no temp dir behind', async () => {
    const postmasters = [stack.primary.pid, stack.replica.pid];
    const pids = [...postmasters, stack.pgbouncer.pid, stack.redis.pid].filter((p): p is number => p !== undefined);
    assert.equal(pids.length, 4);
    // Postgres backends and auxiliary processes too.
    for (const pm of postmasters) pids.push(...childPids(pm!));
    assert.ok(pids.length > 8, `expected postgres children, got ${pids.length} pids`);
    for (const p of pids.slice(0, 4)) assert.ok(pidAlive(p));
    const dirs = [path.dirname(stack.primary.dataDir), path.dirname(stack.replica.dataDir), stack.pgbouncer.dir, stack.redis.dir];
    const t0 = performance.now();
    await stack.stop();
    timings['stack.stop'] = Math.round(performance.now() - t0);
    const alive = pids.filter(pidAlive);
    assert.deepEqual(alive, [], 'processes left behind');
    assert.deepEqual(livePids(), []);
    for (const d of dirs) assert.ok(!fs.existsSync(d), `${d} left behind`);
  });
});

describe('single servers', () => {
  test('startPostgres settings override postgresql.conf; startReplica copies them', async () => {
    const t0 = performance.now();
    const p = await startPostgres({ settings: { max_connections: '42', work_mem: '8MB' } });
    const tPrimary = performance.now() - t0;
    try {
      const t1 = performance.now();
      const r = await startReplica(p);
      const tReplica = performance.now() - t1;
      console.log(`startPostgres ${Math.round(tPrimary)} ms, startReplica ${Math.round(tReplica)} ms`);
      try {
        for (const s of [p, r]) {
          const [row] = await query(s.url(), `SELECT current_setting('max_connections') AS mc, current_setting('work_mem') AS wm`);
          assert.deepEqual(row, { mc: '42', wm: '8MB' });
        }
      } finally {
        await r.destroy();
      }
    } finally {
      await p.destroy();
    }
  });

  test('a server that cannot start fails fast with its log tail, and leaves nothing behind', async () => {
    const before = new Set(fs.readdirSync(harnessTmpRoot));
    const t0 = performance.now();
    await assert.rejects(startPostgres({ settings: { max_connections: 'lots' } }), (err: Error) => {
      assert.match(err.message, /exited with code 1 before it was ready/);
      assert.match(err.message, /invalid value for parameter "max_connections": "lots"/);
      return true;
    });
    assert.ok(performance.now() - t0 < 10_000);
    assert.deepEqual(livePids(), []);
    // Other test files may be creating dirs in parallel: look only for ours (it is gone).
    const created = fs.readdirSync(harnessTmpRoot).filter((d) => d.startsWith('hk-pg-') && !before.has(d));
    for (const d of created) {
      let owner = '';
      try {
        owner = fs.readFileSync(path.join(harnessTmpRoot, d, '.harness-owner'), 'utf8').split(' ')[0] ?? '';
      } catch {
        continue; // someone else's, being created or removed right now
      }
      assert.notEqual(Number(owner), process.pid, `${d} left behind`);
    }
  });

  test('a taken port is retried with a new one (redis, postgres, pgbouncer)', async () => {
    const blocker = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      forceNextPorts(taken);
      const r = await startRedis({ maxmemory: '10mb', maxmemoryPolicy: 'allkeys-lru' });
      forceNextPorts(taken);
      const p = await startPostgres();
      forceNextPorts(taken);
      const b = await startPgBouncer(p, { poolSize: 2, maxClientConn: 20 });
      try {
        for (const port of [r.port, p.port, b.port]) assert.notEqual(port, taken);
        assert.equal(await redisPing(r.url()), 'PONG');
        const c = new Redis(r.url());
        assert.equal(await c.config('GET', 'maxmemory-policy').then((x) => (x as string[])[1]), 'allkeys-lru');
        c.disconnect();
        const [row] = await query(b.url(), 'SELECT 1 AS one');
        assert.equal(row?.['one'], 1);
        const cfg = await query<{ key: string; value: string }>(b.adminUrl(), 'SHOW CONFIG');
        assert.equal(cfg.find((x) => x.key === 'default_pool_size')?.value, '2');
        assert.equal(cfg.find((x) => x.key === 'max_client_conn')?.value, '20');
      } finally {
        await Promise.all([r.destroy(), b.destroy()]);
        await p.destroy();
      }
    } finally {
      blocker.close();
    }
  });
});

describe('a test process that ends without cleaning up', () => {
  // A child Node process starts servers, prints their pids and dirs, then exits or is killed.
  const script = (mode: 'exit' | 'hang'): string => `
    const { startRedis } = await import(${JSON.stringify(path.resolve('test/harness/redis.ts'))});
    const { startPostgres } = await import(${JSON.stringify(path.resolve('test/harness/postgres.ts'))});
    const [r, p] = await Promise.all([startRedis(), startPostgres()]);
    console.log(JSON.stringify({ pids: [r.pid, p.pid], dirs: [r.dir, p.dataDir] }));
    ${mode === 'exit' ? 'process.exit(0);' : 'setInterval(() => {}, 1000);'}
  `;

  function runChild(mode: 'exit' | 'hang'): Promise<{ pids: number[]; dirs: string[]; child: ReturnType<typeof spawn> }> {
    const child = spawn(process.execPath, ['--input-type=module', '--eval', script(mode)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) {
          const parsed = JSON.parse(line) as { pids: number[]; dirs: string[] };
          resolve({ ...parsed, dirs: parsed.dirs.map((d) => (d.endsWith('/data') ? path.dirname(d) : d)), child });
        }
      });
      child.once('exit', (code) => reject(new Error(`child exited (${code}) before reporting: ${out}`)));
    });
  }

  test('process.exit(): the exit hook stops its servers and removes their dirs', async () => {
    const { pids, dirs, child } = await runChild('exit');
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
    assert.equal(pids.length, 2);
    assert.ok(allGone(pids), `left running: ${pids.filter(pidAlive).join(', ')}`);
    for (const d of dirs) assert.ok(!fs.existsSync(d), `${d} left behind`);
  });

  test('SIGKILL: the servers die with it (pdeathsig); the next sweep removes the dirs', async () => {
    const { pids, dirs, child } = await runChild('hang');
    for (const p of pids) assert.ok(pidAlive(p));
    child.kill('SIGKILL');
    await eventually('servers gone after SIGKILL of their parent', async () => (allGone(pids) ? true : undefined));
    // A sweep (this one, or a parallel test file's) removes them once nothing of theirs runs;
    // on a loaded machine the last server process may still be exiting at the first try.
    await eventually('dirs swept', async () => {
      sweepStaleTempDirs();
      return dirs.every((d) => !fs.existsSync(d)) ? true : undefined;
    }, 30_000);
  });
});
