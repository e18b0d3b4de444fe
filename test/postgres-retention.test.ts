import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { freePort } from './harness/ports.ts';
import { find, startService, value, type Service } from './helpers/service.ts';

// The retention collector (src/collectors/postgres-retention.ts) against a real Postgres 15:
// for each actions.cleanup / actions.archive entry, the oldest row's age and the entry's
// older_than. Rows are dated relative to the database's now(), so the ages have known lower
// bounds; the upper bounds allow for the time the test takes, never an exact clock.

const DAY = 86_400;
// Upper slack on an age: the time between inserting the rows and reading them back.
const SLACK = 600;
const TRICKY_TABLE = 'Chat "Logs"; DROP';
const TRICKY_COLUMN = 'Created At';

let primary: PgServer;
let svc: Service;
let admin: pg.Client;
let downPort: number;

before(async () => {
  primary = await startPostgres();
  admin = new pg.Client({ connectionString: primary.url({ db: 'app' }) });
  await admin.connect();
  await admin.query(`
    CREATE TABLE chat_logs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), body text);
    CREATE INDEX ON chat_logs (created_at);
    INSERT INTO chat_logs (created_at, body) SELECT now() - make_interval(days => k), 'log ' || k FROM generate_series(1, 100) k;
    CREATE TABLE conversations (id int PRIMARY KEY, started_at timestamp NOT NULL);
    CREATE INDEX ON conversations (started_at);
    INSERT INTO conversations SELECT k, localtimestamp - make_interval(days => k, hours => 6) FROM generate_series(0, 10) k;
    CREATE TABLE daily_stats (day date PRIMARY KEY, n int);
    INSERT INTO daily_stats SELECT current_date - k, k FROM generate_series(0, 40) k;
    CREATE TABLE empty_logs (id int PRIMARY KEY, at timestamptz NOT NULL);
    CREATE INDEX ON empty_logs (at);
    CREATE TABLE notes (id int PRIMARY KEY, created_at text);
    INSERT INTO notes VALUES (1, '2020-01-01');
    CREATE VIEW recent_logs AS SELECT * FROM chat_logs;
    CREATE TABLE ${pg.escapeIdentifier(TRICKY_TABLE)} (${pg.escapeIdentifier(TRICKY_COLUMN)} timestamptz);
    INSERT INTO ${pg.escapeIdentifier(TRICKY_TABLE)} VALUES (now() - interval '3 days');
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO housekeeper;
  `);
  // A Postgres target where nothing listens: its collection fails, the scrape does not.
  downPort = await freePort();
  svc = await startService(`
postgres:
  - name: primary
    url: ${primary.url({ db: 'app', user: 'housekeeper' })}
  - name: gone
    url: postgres://housekeeper:x@127.0.0.1:${downPort}/app
actions:
  cleanup:
    chat_logs: { postgres: primary, table: chat_logs, column: created_at, older_than: 90d }
    daily_stats: { postgres: primary, table: daily_stats, column: day, older_than: 30d }
    empty: { postgres: primary, table: empty_logs, column: at, older_than: 7d }
    missing: { postgres: primary, table: no_such_table, column: created_at, older_than: 90d }
    wrong_type: { postgres: primary, table: notes, column: created_at, older_than: 90d }
    no_column: { postgres: primary, table: chat_logs, column: logged_at, older_than: 90d }
    a_view: { postgres: primary, table: recent_logs, column: created_at, older_than: 90d }
    tricky: { postgres: primary, table: ${JSON.stringify(TRICKY_TABLE)}, column: ${JSON.stringify(TRICKY_COLUMN)}, older_than: 1d }
    elsewhere: { postgres: gone, table: chat_logs, column: created_at, older_than: 90d }
  archive:
    conversations: { postgres: primary, schema: public, table: conversations, column: started_at, archive_table: conversations_archive, older_than: 30d }
`);
});

after(async () => {
  await svc?.close();
  await admin?.end();
  await primary?.destroy();
});

const labelsOf = (entry: string, kind: string, table: string): Record<string, string> => ({ target: 'primary', entry, kind, table });

test('the oldest row\'s age and the retention of each entry, by kind, target and table', async () => {
  const { status, body } = await svc.scrape();
  assert.equal(status, 200);
  const cases: [string, string, string, number, number][] = [
    // entry, kind, table label, older_than (s), the oldest row's age at insert (s)
    ['chat_logs', 'cleanup', 'chat_logs', 90 * DAY, 100 * DAY],
    ['conversations', 'archive', 'public.conversations', 30 * DAY, 10 * DAY + 6 * 3600],
    // The helper's parser keeps the exposition's escapes: a `"` in a label value reads `\"`.
    ['tricky', 'cleanup', TRICKY_TABLE.replaceAll('"', '\\"'), DAY, 3 * DAY],
  ];
  for (const [entry, kind, table, retention, oldest] of cases) {
    const l = labelsOf(entry, kind, table);
    assert.equal(value(body, 'pg_retention_check_success', l), 1, entry);
    assert.equal(value(body, 'pg_retention_max_age_seconds', l), retention, entry);
    const age = value(body, 'pg_retention_oldest_row_age_seconds', l);
    assert.ok(age !== undefined && age >= oldest && age < oldest + SLACK, `${entry}: age ${age}, want [${oldest}, ${oldest + SLACK})`);
  }
  // A date column is dated from its midnight: 40 days ago at midnight is 40 to 41 days old.
  const age = value(body, 'pg_retention_oldest_row_age_seconds', labelsOf('daily_stats', 'cleanup', 'daily_stats'));
  assert.ok(age !== undefined && age >= 40 * DAY && age <= 41 * DAY + SLACK, `daily_stats: age ${age}`);
  assert.equal(value(body, 'housekeeper_collector_success', { collector: 'postgres_retention', target: 'primary' }), 1);
});

test('an empty table is age 0', async () => {
  const { body } = await svc.scrape();
  const l = labelsOf('empty', 'cleanup', 'empty_logs');
  assert.equal(value(body, 'pg_retention_check_success', l), 1);
  assert.equal(value(body, 'pg_retention_oldest_row_age_seconds', l), 0);
  assert.equal(value(body, 'pg_retention_max_age_seconds', l), 7 * DAY);
});

test('a missing table, a missing column, a column not of a time type and a view fail their entry, not the scrape', async () => {
  const first = await svc.scrape();
  const { status, body } = await svc.scrape();
  assert.equal(first.status, 200);
  assert.equal(status, 200);
  const bad: [string, string][] = [
    ['missing', 'no_such_table'],
    ['no_column', 'chat_logs'],
    ['wrong_type', 'notes'],
    ['a_view', 'recent_logs'],
  ];
  for (const [entry, table] of bad) {
    const l = labelsOf(entry, 'cleanup', table);
    assert.equal(value(body, 'pg_retention_check_success', l), 0, entry);
    assert.equal(value(body, 'pg_retention_oldest_row_age_seconds', l), undefined, `${entry}: no age`);
    assert.equal(value(body, 'pg_retention_max_age_seconds', l), 90 * DAY, `${entry}: its retention still shows`);
  }
  // The good entries and the target's own health are untouched.
  assert.equal(value(body, 'housekeeper_collector_success', { collector: 'postgres_retention', target: 'primary' }), 1);
  assert.equal(value(body, 'pg_up', { target: 'primary' }), 1);
  assert.equal(value(body, 'pg_retention_check_success', labelsOf('chat_logs', 'cleanup', 'chat_logs')), 1);
  // One warning per failing entry, with its reason, not one per scrape.
  const warned = (entry: string): string[] => svc.lines.filter((line) => {
    const o = JSON.parse(line) as { msg?: string; entry?: string; level?: number };
    return o.msg === 'retention check failed' && o.entry === entry && o.level === 40;
  });
  assert.equal(warned('missing').length, 1, 'one warning for the missing table');
  assert.match(warned('missing')[0] as string, /no table \\"no_such_table\\"/);
  assert.match(warned('wrong_type')[0] as string, /is text, not timestamp, timestamptz or date/);
  assert.match(warned('no_column')[0] as string, /has no column \\"logged_at\\"/);
  assert.match(warned('a_view')[0] as string, /is a view/);
});

test('a target that is down is reported down; the scrape still answers', async () => {
  const { status, body } = await svc.scrape();
  assert.equal(status, 200);
  assert.equal(value(body, 'housekeeper_collector_success', { collector: 'postgres_retention', target: 'gone' }), 0);
  assert.equal(value(body, 'pg_up', { target: 'gone' }), 0);
  assert.deepEqual(find(body, 'pg_retention_max_age_seconds', { target: 'gone' }), [], 'a down target\'s metrics are absent');
  assert.equal(value(body, 'housekeeper_collector_success', { collector: 'postgres_retention', target: 'primary' }), 1);
});

test('a table created later is picked up, and its entry recovers', async () => {
  await admin.query('CREATE TABLE no_such_table (id int, created_at timestamptz); GRANT SELECT ON no_such_table TO housekeeper');
  try {
    const { body } = await svc.scrape();
    const l = labelsOf('missing', 'cleanup', 'no_such_table');
    assert.equal(value(body, 'pg_retention_check_success', l), 1);
    assert.equal(value(body, 'pg_retention_oldest_row_age_seconds', l), 0);
    assert.ok(svc.lines.some((line) => line.includes('retention check recovered') && line.includes('"entry":"missing"')));
  } finally {
    await admin.query('DROP TABLE no_such_table');
  }
});

/** Statements the retention check has run on the server so far (pg_stat_statements counts each once it ends). */
async function retentionStatements(): Promise<number> {
  const c = new pg.Client({ connectionString: primary.url({ db: 'postgres' }) });
  await c.connect();
  try {
    const r = await c.query<{ calls: number }>(
      `SELECT COALESCE(sum(s.calls), 0)::float8 AS calls FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
       WHERE r.rolname = 'housekeeper' AND (s.query LIKE '%age_seconds%' OR s.query LIKE '%has_table_privilege%')`,
    );
    return Number(r.rows[0]?.calls ?? 0);
  } finally {
    await c.end();
  }
}

test('an entry that checked out costs one statement a scrape, and a change in the catalog still fails it', async () => {
  // Settle: every entry on primary checked once (and anything an earlier test changed re-checked).
  await svc.scrape();
  await svc.scrape();
  const before = await retentionStatements();
  const { body } = await svc.scrape();
  // Five entries read with their check in one statement each; the four failing ones are
  // checked anew on every scrape (one statement each), as on the first.
  assert.equal((await retentionStatements()) - before, 9);
  assert.equal(value(body, 'pg_retention_check_success', labelsOf('daily_stats', 'cleanup', 'daily_stats')), 1);

  // Changes that leave the age query readable must fail the entry as the first check would.
  await admin.query('ALTER TABLE daily_stats ALTER COLUMN day TYPE text');
  await admin.query('CREATE SCHEMA other; CREATE TABLE other.chat_logs (created_at timestamptz); GRANT USAGE ON SCHEMA other TO housekeeper');
  try {
    const changed = (await svc.scrape()).body;
    assert.equal(value(changed, 'pg_retention_check_success', labelsOf('daily_stats', 'cleanup', 'daily_stats')), 0, 'a column no longer of a time type');
    assert.equal(value(changed, 'pg_retention_check_success', labelsOf('chat_logs', 'cleanup', 'chat_logs')), 0, 'a second table of the name');
    assert.ok(svc.lines.some((line) => line.includes('retention check failed') && line.includes('several schemas')));
  } finally {
    await admin.query('DROP SCHEMA other CASCADE; ALTER TABLE daily_stats ALTER COLUMN day TYPE date USING day::date');
  }
  const back = (await svc.scrape()).body;
  assert.equal(value(back, 'pg_retention_check_success', labelsOf('daily_stats', 'cleanup', 'daily_stats')), 1);
  assert.equal(value(back, 'pg_retention_check_success', labelsOf('chat_logs', 'cleanup', 'chat_logs')), 1);
});
