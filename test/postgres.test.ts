import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startPostgres, startReplica, type PgServer } from './harness/postgres.ts';
import { find, scrapeUntil, startService, value, type Service } from './helpers/service.ts';
import { startHungServer } from './helpers/hung.ts';
import { familyNames, labelSets, startAnchor } from './helpers/postgres-exporter.ts';
import { spawnSync } from 'node:child_process';
import { until } from './helpers/wait.ts';

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
  assert.ok((value(body, 'pg_database_user_tables', { target: 'primary', datname: 'app' }) ?? 0) >= 9);
  // One bound for both table families: the same N tables in pg_statio_user_tables_*.
  const io = find(body, 'pg_statio_user_tables_heap_blks_hit', { target: 'primary' }).map((x) => x.labels['relname']).sort();
  assert.deepEqual(io, find(body, 'pg_stat_user_tables_n_dead_tup', { target: 'primary' }).map((x) => x.labels['relname']).sort());
  assert.equal(find(body, 'pg_stat_user_tables_seq_scan', { target: 'primary' }).length, 5);
  assert.equal(value(body, 'pg_stat_user_tables_n_tup_ins', { target: 'primary', relname: 'docs' }), 1000);
  assert.equal(value(body, 'pg_stat_user_tables_n_tup_del', { target: 'primary', relname: 'docs' }), 500);

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
    await until('the 20000 rows replayed on the replica', async () =>
      (await r.query('SELECT count(*)::int AS n FROM docs WHERE id > 100000')).rows[0].n === 20000, { tries: 100, intervalMs: 100 });
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
  assert.deepEqual(Object.keys(top[0]?.labels ?? {}).sort(), ['datname', 'queryid', 'server', 'target', 'user']);
  assert.equal(find(body, 'pg_stat_statements_calls_total', { target: 'primary' }).length, 0);
  assert.ok(find(body, 'pg_stat_statements_calls_total', { target: 'stats' }).every((s) => s.value >= 1));
});

/** host:port of a harness server, postgres_exporter's `server` label. */
const serverLabel = (s: PgServer): string => `127.0.0.1:${s.port}`;

test('pg_settings_* with postgres_exporter\'s names and unit conversion', async () => {
  const body = (await svc.scrape()).body;
  const l = { target: 'primary', server: serverLabel(primary) };
  const q = async (sql: string): Promise<number> => Number((await admin.query<{ v: string }>(sql)).rows[0]?.v);
  // Sizes in bytes, times in seconds, plain numbers as they are, bools 1/0.
  assert.equal(value(body, 'pg_settings_shared_buffers_bytes', l), await q("SELECT pg_size_bytes(current_setting('shared_buffers')) AS v"));
  assert.equal(value(body, 'pg_settings_shared_buffers_bytes', l), 32 * 2 ** 20, 'the harness sets 32MB');
  assert.equal(value(body, 'pg_settings_work_mem_bytes', l), await q("SELECT pg_size_bytes(current_setting('work_mem')) AS v"));
  assert.equal(value(body, 'pg_settings_effective_cache_size_bytes', l), await q("SELECT pg_size_bytes(current_setting('effective_cache_size')) AS v"));
  assert.equal(value(body, 'pg_settings_max_locks_per_transaction', l), await q("SELECT current_setting('max_locks_per_transaction') AS v"));
  assert.equal(value(body, 'pg_settings_autovacuum_naptime_seconds', l), await q("SELECT EXTRACT(EPOCH FROM current_setting('autovacuum_naptime')::interval) AS v"));
  assert.equal(value(body, 'pg_settings_autovacuum_vacuum_cost_delay_seconds', l), await q("SELECT setting::float8 / 1000 AS v FROM pg_settings WHERE name = 'autovacuum_vacuum_cost_delay'"));
  assert.equal(value(body, 'pg_settings_autovacuum_vacuum_scale_factor', l), await q("SELECT current_setting('autovacuum_vacuum_scale_factor') AS v"));
  assert.equal(value(body, 'pg_settings_log_min_duration_statement_seconds', l), -1, '-1 stays -1');
  assert.equal(value(body, 'pg_settings_fsync', l), 0, 'the harness runs with fsync off');
  assert.equal(value(body, 'pg_settings_autovacuum', l), 1);
  // Dotted names become underscores (pg_stat_statements.max, preloaded by the harness).
  assert.equal(value(body, 'pg_settings_pg_stat_statements_max', l), await q("SELECT current_setting('pg_stat_statements.max') AS v"));
  // Settings are re-read when the configuration is reloaded (pg_conf_load_time moves).
  await admin.query("ALTER SYSTEM SET work_mem = '7MB'");
  await admin.query('SELECT pg_reload_conf()');
  try {
    await scrapeUntil(svc, 'work_mem 7MB after a reload', (b) => value(b, 'pg_settings_work_mem_bytes', l) === 7 * 2 ** 20);
  } finally {
    await admin.query('ALTER SYSTEM RESET work_mem');
    await admin.query('SELECT pg_reload_conf()');
  }
  await scrapeUntil(svc, 'work_mem back to 4MB', (b) => value(b, 'pg_settings_work_mem_bytes', l) === 4 * 2 ** 20);
});

test('pg_stat_database_* for every row of the view, with datid and datname', async () => {
  const datid = String((await admin.query<{ oid: string }>("SELECT oid::text FROM pg_database WHERE datname = 'app'")).rows[0]?.oid);
  const l = { target: 'primary', datid, datname: 'app', server: serverLabel(primary) };
  const before = value((await svc.scrape()).body, 'pg_stat_database_tup_inserted', l) ?? -1;
  assert.ok(before >= 1000, 'the 1000 rows of docs');
  await oneShot('CREATE TABLE counted (id int); INSERT INTO counted SELECT generate_series(1, 250)');
  const body = await scrapeUntil(svc, 'tup_inserted to grow by 250', (b) => (value(b, 'pg_stat_database_tup_inserted', l) ?? 0) >= before + 250);
  assert.ok((value(body, 'pg_stat_database_xact_commit', l) ?? 0) > 0);
  assert.ok((value(body, 'pg_stat_database_numbackends', l) ?? 0) >= 1, 'the admin pool is connected');
  assert.ok((value(body, 'pg_stat_database_blks_hit', l) ?? 0) > 0);
  for (const name of ['tup_returned', 'tup_fetched', 'tup_updated', 'tup_deleted', 'temp_files', 'blk_read_time', 'blk_write_time', 'sessions', 'conflicts_confl_lock']) {
    assert.ok((value(body, `pg_stat_database_${name}`, l) ?? -1) >= 0, name);
  }
  assert.ok(Number.isNaN(value(body, 'pg_stat_database_stats_reset', l)), 'never reset: NaN, as the anchor');
  // datid 0 (shared catalogs) is a row of its own, as postgres_exporter serves it; it has no conflicts row.
  assert.equal(find(body, 'pg_stat_database_xact_commit', { target: 'primary', datid: '0', datname: '' }).length, 1);
  assert.equal(find(body, 'pg_stat_database_conflicts_confl_lock', { target: 'primary', datid: '0' }).length, 0);
  await oneShot('DROP TABLE counted');
});

test('bgwriter, archiver, postmaster start time and version', async () => {
  const body = (await svc.scrape()).body;
  const l = { target: 'primary', server: serverLabel(primary) };
  const started = Number((await admin.query<{ v: string }>('SELECT EXTRACT(EPOCH FROM pg_postmaster_start_time()) AS v')).rows[0]?.v);
  assert.equal(value(body, 'pg_postmaster_start_time_seconds', l), started);
  assert.ok((value(body, 'pg_stat_bgwriter_buffers_alloc_total', l) ?? 0) > 0);
  assert.ok((value(body, 'pg_stat_bgwriter_checkpoints_req_total', l) ?? -1) >= 0);
  assert.ok((value(body, 'pg_stat_bgwriter_stats_reset_total', l) ?? 0) > 1_600_000_000, 'a timestamp');
  assert.equal(value(body, 'pg_stat_archiver_archived_count', l), 0, 'the harness does not archive');
  assert.ok(Number.isNaN(value(body, 'pg_stat_archiver_last_archive_age', l)), 'never archived: NaN, as the anchor');
  const [version] = find(body, 'pg_static', l);
  assert.match(version?.labels['version'] ?? '', /^PostgreSQL 15\./);
  assert.match(version?.labels['short_version'] ?? '', /^15\.\d+\.0$/);
  assert.equal(value(body, 'pg_exporter_last_scrape_error', { target: 'primary' }), 0);
});

test('a replication slot shows with its database, activity and retained WAL', async () => {
  await admin.query("SELECT pg_create_physical_replication_slot('hk_slot', true)");
  try {
    const l = { target: 'primary', slot_name: 'hk_slot', database: '', server: serverLabel(primary) };
    const body = await scrapeUntil(svc, 'hk_slot listed', (b) => find(b, 'pg_replication_slots_active', l).length === 1);
    assert.equal(value(body, 'pg_replication_slots_active', l), 0, 'no one streams from it');
    assert.ok((value(body, 'pg_replication_slots_pg_wal_lsn_diff', l) ?? -1) >= 0, 'reserved at creation, so it has a restart_lsn');
    // pg_stat_replication's slot_name carries the walsender's pid, as in postgres_exporter 0.11.
    const pid = String((await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_replication')).rows[0]?.pid);
    assert.equal(find(body, 'pg_stat_replication_pg_wal_lsn_diff', { target: 'primary', slot_name: pid }).length, 1);
    assert.ok((value(body, 'pg_stat_replication_pg_current_wal_lsn_bytes', { target: 'primary' }) ?? 0) > 0);
  } finally {
    await admin.query("SELECT pg_drop_replication_slot('hk_slot')");
  }
  await scrapeUntil(svc, 'hk_slot gone', (b) => find(b, 'pg_replication_slots_active', { slot_name: 'hk_slot' }).length === 0);
});

test('a part that fails (pg_stat_statements unreadable) sets pg_exporter_last_scrape_error and keeps the rest', async (t) => {
  await admin.query('CREATE DATABASE locked');
  const c = new pg.Client({ connectionString: primary.url({ db: 'locked' }) });
  await c.connect();
  try {
    await c.query('CREATE EXTENSION pg_stat_statements');
    await c.query('REVOKE EXECUTE ON FUNCTION pg_stat_statements(boolean) FROM PUBLIC');
  } finally {
    await c.end();
  }
  const ls = await startService(`
postgres:
  - name: locked
    url: ${primary.url({ db: 'locked', user: 'housekeeper' })}
`);
  t.after(async () => {
    await ls.close();
    await admin.query('DROP DATABASE locked');
  });
  const body = (await ls.scrape()).body;
  assert.equal(value(body, 'pg_exporter_last_scrape_error', { target: 'locked' }), 1);
  assert.equal(value(body, 'pg_up', { target: 'locked' }), 1);
  assert.equal(value(body, 'pg_stat_statements_enabled', { target: 'locked' }), 0);
  assert.ok((value(body, 'pg_settings_max_connections', { target: 'locked' }) ?? 0) > 0, 'the rest is served');
});

// Families postgres_exporter 0.11 (with Debian's example queries.yaml) serves that housekeeper
// deliberately does not. Anything else the anchor has and housekeeper lacks fails the test.
const LEFT_OUT: ReadonlyMap<string, string> = new Map([
  // The exporter's own bookkeeping: housekeeper_collector_success / _duration_seconds say it per target.
  ['pg_exporter_last_scrape_duration_seconds', 'housekeeper_collector_duration_seconds'],
  ['pg_exporter_scrapes_total', 'the exporter counting itself'],
  ['pg_exporter_user_queries_load_error', 'no user queries file'],
  ['pg_scrape_collector_duration_seconds', 'housekeeper_collector_duration_seconds'],
  ['pg_scrape_collector_success', 'housekeeper_collector_success'],
  // queries.yaml's pg_process_idle: a histogram per application_name (unbounded labels).
  ['pg_process_idle_seconds_bucket', 'unbounded application_name'],
  ['pg_process_idle_seconds_count', 'unbounded application_name'],
  ['pg_process_idle_seconds_sum', 'unbounded application_name'],
]);

test('housekeeper serves every pg_* family postgres_exporter 0.11 serves on the same server, with its labels', async (t) => {
  // The anchor with the housekeeper role, as housekeeper connects.
  const anchor = await startAnchor(`${primary.url({ db: 'app', user: 'housekeeper' })}?sslmode=disable`);
  t.after(() => anchor.stop());
  const theirs = await anchor.scrape();
  const ours = (await svc.scrape()).body;
  const ourNames = familyNames(ours, 'pg_');
  const missing = [...familyNames(theirs, 'pg_')].filter((n) => !ourNames.has(n) && !LEFT_OUT.has(n));
  assert.deepEqual(missing, [], 'families postgres_exporter serves and housekeeper lacks');
  assert.ok(ourNames.has('pg_settings_shared_buffers_bytes') && ourNames.has('pg_stat_user_tables_n_tup_ins'), 'the comparison saw real output');
  // Same label names, plus housekeeper's target.
  const ourPrimary = ours.split('\n').filter((line) => line.startsWith('#') || line.includes('target="primary"')).join('\n');
  for (const name of familyNames(theirs, 'pg_')) {
    if (LEFT_OUT.has(name)) continue;
    const want = [...labelSets(theirs, name)].map((s) => ['target', ...s.split(',').filter((x) => x !== '')].sort().join(','));
    const got = labelSets(ourPrimary, name);
    for (const w of want) assert.ok(got.has(w), `${name}: labels {${w}}; housekeeper has ${[...got].map((g) => `{${g}}`).join(' ')}`);
  }
});

test('promtool check metrics: no warning on the Postgres families the anchor does not also get', async (t) => {
  const anchor = await startAnchor(`${primary.url({ db: 'app', user: 'housekeeper' })}?sslmode=disable`);
  t.after(() => anchor.stop());
  const pgOnly = (body: string): string => body.split('\n').filter((l) => /^(# (HELP|TYPE) )?pg_/.test(l)).join('\n') + '\n';
  const lint = (body: string): Map<string, string[]> => {
    // promtool exits 1 when it has findings and writes them to stderr.
    const r = spawnSync('promtool', ['check', 'metrics'], { input: pgOnly(body), encoding: 'utf8' });
    if (r.error) throw r.error;
    const out = `${r.stdout}${r.stderr}`;
    const byName = new Map<string, string[]>();
    for (const line of out.split('\n').filter((x) => x.trim() !== '')) {
      const [name = '', ...rest] = line.split(' ');
      byName.set(name, [...(byName.get(name) ?? []), rest.join(' ')]);
    }
    return byName;
  };
  const ours = lint((await svc.scrape()).body);
  const theirs = lint(await anchor.scrape());
  assert.ok(ours.size > 0 && theirs.size > 0, 'promtool ran and read both');
  for (const [name, warnings] of ours) {
    for (const w of warnings) assert.ok(theirs.get(name)?.includes(w), `${name}: ${w} (the anchor has no such warning)`);
  }
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
