import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startPostgres, startReplica, type PgServer } from './harness/postgres.ts';
import { find, scrapeUntil, startService, value, type Service } from './helpers/service.ts';
import { startHungServer } from './helpers/hung.ts';

// The Postgres collector against a real Postgres 15 primary and its streaming replica.
// Each test causes the real condition and reads it back through /metrics.

let primary: PgServer;
let replica: PgServer;
let svc: Service;
let admin: pg.Pool;

before(async () => {
  primary = await startPostgres();
  replica = await startReplica(primary);
  admin = new pg.Pool({ connectionString: primary.url({ db: 'app' }), max: 6 });
  admin.on('error', () => {});
  await admin.query('CREATE TABLE docs (id int PRIMARY KEY, body text)');
  await admin.query("INSERT INTO docs SELECT g, 'doc ' || g FROM generate_series(1, 1000) g");
  svc = await startService(`
collectors:
  postgres: { top_tables: 5 }
postgres:
  - name: primary
    url: ${primary.url({ db: 'app', user: 'housekeeper' })}
  - name: stats
    url: ${primary.url({ db: 'postgres', user: 'housekeeper' })}
  - name: replica
    url: ${replica.url({ db: 'app', user: 'housekeeper' })}
`);
});

/** Runs SQL on its own connection and closes it: a backend flushes its table stats when it exits. */
async function oneShot(text: string): Promise<void> {
  const c = new pg.Client({ connectionString: primary.url({ db: 'app' }) });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

after(async () => {
  await svc?.close();
  await admin?.end();
  await replica?.destroy();
  await primary?.destroy();
});

test('pg_up, settings and role of each server', async () => {
  const { status, body } = await svc.scrape();
  assert.equal(status, 200);
  for (const target of ['primary', 'stats', 'replica']) {
    assert.equal(value(body, 'pg_up', { target }), 1, target);
    assert.equal(value(body, 'housekeeper_collector_success', { collector: 'postgres', target }), 1);
  }
  const max = Number((await admin.query('SHOW max_connections')).rows[0].max_connections);
  assert.equal(value(body, 'pg_settings_max_connections', { target: 'primary' }), max);
  assert.equal(value(body, 'pg_settings_superuser_reserved_connections', { target: 'primary' }), 3);
  assert.equal(value(body, 'pg_replication_is_replica', { target: 'primary' }), 0);
  assert.equal(value(body, 'pg_replication_is_replica', { target: 'replica' }), 1);
  assert.ok((value(body, 'pg_database_size_bytes', { target: 'primary', datname: 'app' }) ?? 0) > 1_000_000);
  assert.ok((value(body, 'pg_database_wraparound_age_datfrozenxid', { target: 'primary', datname: 'app' }) ?? -1) >= 0);
});

test('connections by database and state, zero-filled', async () => {
  const held = await admin.connect();
  try {
    await held.query('BEGIN');
    await held.query('SELECT 1');
    const body = await scrapeUntil(svc, 'an idle-in-transaction session', (b) => (value(b, 'pg_stat_activity_count', { target: 'primary', datname: 'app', state: 'idle in transaction' }) ?? 0) >= 1);
    assert.equal(value(body, 'pg_stat_activity_count', { target: 'primary', datname: 'app', state: 'fastpath function call' }), 0);
    assert.ok((value(body, 'pg_stat_activity_max_tx_duration', { target: 'primary', datname: 'app', state: 'idle in transaction' }) ?? -1) >= 0);
  } finally {
    await held.query('ROLLBACK');
    held.release();
  }
});

test('a 7-second query shows as long-running, then goes', async () => {
  const sleeper = new pg.Client({ connectionString: primary.url({ db: 'app' }) });
  await sleeper.connect();
  const running = sleeper.query('SELECT pg_sleep(7)').catch(() => undefined);
  try {
    const body = await scrapeUntil(svc, 'pg_long_running_queries >= 1', (b) => (value(b, 'pg_long_running_queries', { target: 'primary', datname: 'app' }) ?? 0) >= 1);
    assert.ok((value(body, 'pg_long_running_queries_max_seconds', { target: 'primary', datname: 'app' }) ?? 0) > 5);
    assert.equal(value(body, 'pg_long_running_queries_threshold_seconds', { target: 'primary' }), 5);
    assert.equal(value(body, 'pg_long_running_queries', { target: 'primary', datname: 'postgres' }), 0);
    await running;
    const after = await scrapeUntil(svc, 'no long-running query', (b) => value(b, 'pg_long_running_queries', { target: 'primary', datname: 'app' }) === 0);
    assert.equal(value(after, 'pg_long_running_queries_max_seconds', { target: 'primary', datname: 'app' }), 0);
  } finally {
    await sleeper.end();
  }
});

test('a session waiting on another\'s row lock shows as blocked', async () => {
  const holder = await admin.connect();
  const waiter = await admin.connect();
  let waiting: Promise<unknown> | undefined;
  try {
    await holder.query('BEGIN');
    await holder.query('UPDATE docs SET body = body WHERE id = 1');
    waiting = waiter.query('UPDATE docs SET body = body WHERE id = 1');
    const body = await scrapeUntil(svc, 'a blocked session', (b) => (value(b, 'pg_blocked_sessions', { target: 'primary', datname: 'app' }) ?? 0) >= 1);
    assert.ok((value(body, 'pg_locks_count', { target: 'primary', datname: 'app', mode: 'rowexclusivelock' }) ?? 0) >= 2, 'both sessions hold RowExclusiveLock on docs');
    assert.equal(value(body, 'pg_blocked_sessions', { target: 'primary', datname: 'postgres' }), 0);
  } finally {
    await holder.query('ROLLBACK');
    await waiting;
    holder.release();
    waiter.release();
  }
  await scrapeUntil(svc, 'no blocked session', (b) => value(b, 'pg_blocked_sessions', { target: 'primary', datname: 'app' }) === 0);
});

test('a deadlock is counted', async () => {
  const before = value((await svc.scrape()).body, 'pg_stat_database_deadlocks', { target: 'primary', datname: 'app' }) ?? 0;
  const a = await admin.connect();
  const b = await admin.connect();
  try {
    await a.query('BEGIN');
    await b.query('BEGIN');
    await a.query('UPDATE docs SET body = body WHERE id = 10');
    await b.query('UPDATE docs SET body = body WHERE id = 11');
    const r = await Promise.allSettled([a.query('UPDATE docs SET body = body WHERE id = 11'), b.query('UPDATE docs SET body = body WHERE id = 10')]);
    assert.ok(r.some((x) => x.status === 'rejected'), 'Postgres broke the deadlock');
  } finally {
    await a.query('ROLLBACK');
    await b.query('ROLLBACK');
    a.release();
    b.release();
  }
  await scrapeUntil(svc, 'deadlocks to rise', (body) => (value(body, 'pg_stat_database_deadlocks', { target: 'primary', datname: 'app' }) ?? 0) > before);
});

test('deleting rows raises dead tuples; tables are the top N by dead tuples', async () => {
  for (let i = 0; i < 8; i++) await admin.query(`CREATE TABLE filler_${i} (id int)`);
  await oneShot('DELETE FROM docs WHERE id > 500');
  const body = await scrapeUntil(svc, 'dead tuples on docs', (b) => (value(b, 'pg_stat_user_tables_n_dead_tup', { target: 'primary', relname: 'docs' }) ?? 0) >= 500);
  assert.equal(value(body, 'pg_stat_user_tables_n_live_tup', { target: 'primary', relname: 'docs' }), 500);
  assert.ok((value(body, 'pg_stat_user_tables_table_size_bytes', { target: 'primary', relname: 'docs' }) ?? 0) > 0);
  assert.ok((value(body, 'pg_stat_user_tables_index_size_bytes', { target: 'primary', relname: 'docs' }) ?? 0) > 0);
  assert.equal(value(body, 'pg_stat_user_tables_last_vacuum', { target: 'primary', relname: 'docs' }), 0);
  assert.equal(find(body, 'pg_stat_user_tables_n_dead_tup', { target: 'primary' }).length, 5, 'top_tables: 5 bounds the series');
  assert.ok((value(body, 'pg_stat_user_tables_count', { target: 'primary', datname: 'app' }) ?? 0) >= 9);

  await oneShot('VACUUM docs');
  const vacuumed = await scrapeUntil(svc, 'last_vacuum set', (b) => (value(b, 'pg_stat_user_tables_last_vacuum', { target: 'primary', relname: 'docs' }) ?? 0) > 0);
  assert.equal(value(vacuumed, 'pg_stat_user_tables_n_dead_tup', { target: 'primary', relname: 'docs' }), 0);
});

test('a dropped table disappears from the output', async () => {
  await oneShot('CREATE TABLE doomed (id int); INSERT INTO doomed SELECT generate_series(1, 5000); DELETE FROM doomed');
  await scrapeUntil(svc, 'doomed listed', (b) => find(b, 'pg_stat_user_tables_n_dead_tup', { target: 'primary', relname: 'doomed' }).length === 1);
  await admin.query('DROP TABLE doomed');
  await scrapeUntil(svc, 'doomed gone', (b) => find(b, 'pg_stat_user_tables_n_dead_tup', { relname: 'doomed' }).length === 0);
});

test('writes on the primary show replication data on both sides', async () => {
  await admin.query("INSERT INTO docs SELECT g, repeat('x', 200) FROM generate_series(100001, 120000) g");
  const body = await scrapeUntil(svc, 'a replica in pg_stat_replication', (b) => find(b, 'pg_stat_replication_pg_wal_lsn_diff', { target: 'primary' }).length === 1);
  const [lag] = find(body, 'pg_stat_replication_pg_wal_lsn_diff', { target: 'primary' });
  assert.equal(lag?.labels['state'], 'streaming');
  assert.ok((lag?.value ?? -1) >= 0);
  assert.equal(find(body, 'pg_stat_replication_replay_lag_seconds', { target: 'primary' }).length, 1);
  assert.ok((value(body, 'pg_replication_lag_seconds', { target: 'replica' }) ?? -1) >= 0);
  assert.equal(find(body, 'pg_stat_replication_pg_wal_lsn_diff', { target: 'replica' }).length, 0, 'a replica lists no replicas');
  // The replica really received the rows.
  const r = new pg.Client({ connectionString: replica.url({ db: 'app' }) });
  await r.connect();
  try {
    for (let i = 0; i < 100; i++) {
      const { rows } = await r.query('SELECT count(*)::int AS n FROM docs WHERE id > 100000');
      if (rows[0].n === 20000) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal((await r.query('SELECT count(*)::int AS n FROM docs WHERE id > 100000')).rows[0].n, 20000);
  } finally {
    await r.end();
  }
});

test('pg_stat_statements: top N by mean time where installed, a clear 0 where not', async () => {
  const body = (await svc.scrape()).body;
  assert.equal(value(body, 'pg_stat_statements_enabled', { target: 'stats' }), 1);
  assert.equal(value(body, 'pg_stat_statements_enabled', { target: 'primary' }), 0, 'the extension is not created in db app');
  const top = find(body, 'pg_stat_statements_mean_seconds', { target: 'stats' });
  assert.ok(top.length > 0 && top.length <= 10);
  assert.deepEqual(Object.keys(top[0]?.labels ?? {}).sort(), ['datname', 'queryid', 'target', 'user']);
  assert.equal(find(body, 'pg_stat_statements_calls_total', { target: 'primary' }).length, 0);
  assert.ok(find(body, 'pg_stat_statements_calls_total', { target: 'stats' }).every((s) => s.value >= 1));
});

test('a stopped replica gives pg_up 0 while the scrape answers 200; a restart brings it back', async () => {
  await replica.stop();
  try {
    const r = await svc.scrape({ 'X-Prometheus-Scrape-Timeout-Seconds': '3' });
    assert.equal(r.status, 200);
    assert.equal(value(r.body, 'pg_up', { target: 'replica' }), 0);
    assert.equal(value(r.body, 'housekeeper_collector_success', { collector: 'postgres', target: 'replica' }), 0);
    assert.equal(find(r.body, 'pg_replication_is_replica', { target: 'replica' }).length, 0, 'a down target\'s metrics are absent, not stale');
    assert.equal(value(r.body, 'pg_up', { target: 'primary' }), 1);
  } finally {
    await replica.start();
  }
  await scrapeUntil(svc, 'replica back', (b) => value(b, 'pg_up', { target: 'replica' }) === 1 && value(b, 'pg_replication_is_replica', { target: 'replica' }) === 1);
});

test('a hung server cannot pile up connections', async (t) => {
  const hung = await startHungServer();
  const port = hung.port;
  const hs = await startService(`
server: { scrape_timeout: 1s }
postgres:
  - name: hung
    url: postgres://housekeeper:pw@127.0.0.1:${port}/app
`);
  t.after(async () => {
    await hs.close();
    await hung.close();
  });
  for (let i = 0; i < 6; i++) {
    const r = await hs.scrape({ 'X-Prometheus-Scrape-Timeout-Seconds': '0.6' });
    assert.equal(r.status, 200);
    assert.equal(value(r.body, 'pg_up', { target: 'hung' }), 0);
  }
  assert.ok(hung.accepted <= 2, `at most the pool's 2 connections were opened, saw ${hung.accepted}`);
});

test('no password reaches /metrics or the log', async () => {
  const body = (await svc.scrape()).body;
  for (const secret of [primary.monitorPassword, primary.superPassword]) {
    assert.ok(!body.includes(secret), 'password in /metrics');
    assert.ok(!svc.lines.some((l) => l.includes(secret)), 'password in the log');
  }
  assert.ok(svc.lines.length > 0, 'the service did log (the replica outage at least)');
});
