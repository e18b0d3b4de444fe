import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { startPgBouncer, type PgBouncerServer } from './harness/pgbouncer.ts';
import { find, scrapeUntil, startService, value, type Service } from './helpers/service.ts';

// The PgBouncer collector against a real PgBouncer 1.18 in front of a real primary.

let primary: PgServer;
let bouncer: PgBouncerServer;
let svc: Service;

before(async () => {
  primary = await startPostgres();
  bouncer = await startPgBouncer(primary, { poolSize: 1, maxClientConn: 50 });
  svc = await startService(`
pgbouncer:
  - name: bouncer
    url: ${bouncer.adminUrl()}
`);
});

after(async () => {
  await svc?.close();
  await bouncer?.destroy();
  await primary?.destroy();
});

test('pools, databases and config from the admin console', async () => {
  const c = new pg.Client({ connectionString: bouncer.url('app') });
  await c.connect();
  await c.query('SELECT 1');
  await c.end();
  const body = await scrapeUntil(svc, 'the app pool', (b) => find(b, 'pgbouncer_pools_server_idle_connections', { target: 'bouncer', database: 'app' }).length === 1);
  assert.equal(value(body, 'pgbouncer_up', { target: 'bouncer' }), 1);
  assert.equal(value(body, 'pgbouncer_config_max_client_connections', { target: 'bouncer' }), 50);
  assert.equal(value(body, 'pgbouncer_databases_pool_size', { target: 'bouncer', name: 'app' }), 1);
  assert.equal(value(body, 'pgbouncer_pools_client_waiting_connections', { target: 'bouncer', database: 'app', user: 'postgres' }), 0);
  assert.ok((value(body, 'pgbouncer_stats_queries_pooled_total', { target: 'bouncer', database: 'app' }) ?? 0) >= 1);
  // pgbouncer_exporter's SHOW LISTS / SHOW VERSION families and the 1.18 columns.
  assert.equal(find(body, 'pgbouncer_version_info', { target: 'bouncer' })[0]?.labels['version']?.startsWith('PgBouncer 1.'), true);
  assert.ok((value(body, 'pgbouncer_databases', { target: 'bouncer' }) ?? 0) >= 2, 'app and the pgbouncer admin database');
  assert.ok((value(body, 'pgbouncer_pools', { target: 'bouncer' }) ?? 0) >= 1);
  assert.ok((value(body, 'pgbouncer_used_servers', { target: 'bouncer' }) ?? 0) >= 1, 'the app pool keeps its server connection');
  assert.equal(value(body, 'pgbouncer_databases_paused', { target: 'bouncer', name: 'app' }), 0);
  assert.equal(value(body, 'pgbouncer_databases_disabled', { target: 'bouncer', name: 'app' }), 0);
  assert.equal(value(body, 'pgbouncer_pools_client_active_cancel_connections', { target: 'bouncer', database: 'app', user: 'postgres' }), 0);
});

test('a client waiting for the only server connection shows as waiting, with its wait time', async () => {
  const holder = new pg.Client({ connectionString: bouncer.url('app') });
  const waiter = new pg.Client({ connectionString: bouncer.url('app') });
  await holder.connect();
  await waiter.connect();
  try {
    // Transaction pooling with pool_size 1: the open transaction holds the only server
    // connection, so the second client's query queues in PgBouncer.
    await holder.query('BEGIN');
    await holder.query('SELECT 1');
    const queued = waiter.query('SELECT 2');
    const body = await scrapeUntil(
      svc,
      'a waiting client',
      (b) => (value(b, 'pgbouncer_pools_client_waiting_connections', { target: 'bouncer', database: 'app', user: 'postgres' }) ?? 0) >= 1,
    );
    assert.equal(value(body, 'pgbouncer_pools_server_active_connections', { target: 'bouncer', database: 'app', user: 'postgres' }), 1);
    await scrapeUntil(svc, 'maxwait above zero', (b) => (value(b, 'pgbouncer_pools_client_maxwait_seconds', { target: 'bouncer', database: 'app', user: 'postgres' }) ?? 0) > 0);
    await holder.query('COMMIT');
    assert.equal((await queued).rows[0]?.['?column?'], 2);
  } finally {
    await holder.end();
    await waiter.end();
  }
  await scrapeUntil(svc, 'no waiting client', (b) => value(b, 'pgbouncer_pools_client_waiting_connections', { target: 'bouncer', database: 'app', user: 'postgres' }) === 0);
});

test('a stopped PgBouncer gives pgbouncer_up 0 and comes back after a restart', async () => {
  await bouncer.stop();
  try {
    const r = await svc.scrape({ 'X-Prometheus-Scrape-Timeout-Seconds': '3' });
    assert.equal(r.status, 200);
    assert.equal(value(r.body, 'pgbouncer_up', { target: 'bouncer' }), 0);
    assert.equal(find(r.body, 'pgbouncer_pools_client_active_connections').length, 0);
  } finally {
    await bouncer.start();
  }
  await scrapeUntil(svc, 'pgbouncer back', (b) => value(b, 'pgbouncer_up', { target: 'bouncer' }) === 1);
  assert.ok(!svc.lines.some((l) => l.includes(bouncer.adminPassword)), 'admin password in the log');
});
