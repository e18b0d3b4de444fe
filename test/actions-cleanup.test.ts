import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { Value } from '@sinclair/typebox/value';
import type { ActionContext, AnyAction } from '../src/actions/action.ts';
import { actions } from '../src/actions/index.ts';
import { closeTargets, type Targets } from '../src/targets/index.ts';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { configFrom } from './helpers/config.ts';
import { notification, rulesDir, startInstance, TOKEN, until as engineUntil } from './helpers/remediation.ts';
import { action, actionContext, params } from './helpers/actions.ts';
import { poller } from './helpers/wait.ts';

// cleanup-old-rows and archive-old-rows against a real PostgreSQL 15: exactly the old rows go
// (counted by SQL before), in batches, one transaction each; tricky names from config are
// quoted; names not in the catalog are refused; an abort leaves every row in one place.

let primary: PgServer;
let targets: Targets;
let ctx: ActionContext;
let su: pg.Client;
const clients: pg.Client[] = [];
/** The config's YAML, so an engine replica can run on the same entries. */
let configYaml: string;

const q = (s: string): string => pg.escapeIdentifier(s);
const TRICKY_SCHEMA = 'Ops "Data"';
const TRICKY_TABLE = 'Chat Logs"; DROP TABLE chat_logs; --';
const TRICKY_COLUMN = 'Created "At"';
const TRICKY_ARCHIVE = "Old Logs'); DELETE FROM chat_logs; --";

async function one<T = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T> {
  return (await su.query(text, values)).rows[0] as T;
}

async function count(text: string, values: unknown[] = []): Promise<number> {
  return Number((await one<{ n: string }>(text, values)).n);
}

async function ids(text: string): Promise<number[]> {
  return (await su.query<{ id: string }>(text)).rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/** Bounded wait for a condition (no sleeps asserted on). */
const until = poller({ tries: 200, intervalMs: 50 });

/** YAML double-quoted scalar: JSON's string syntax is a subset of it. */
const y = (s: string): string => JSON.stringify(s);

before(async () => {
  primary = await startPostgres();
  su = new pg.Client({ connectionString: primary.url({ db: 'app' }), application_name: 'test-admin' });
  await su.connect();
  // chat_logs: one row per hour over 200 days (4800 rows), each half an hour off the hour so
  // no row sits on the 90-day line when the run's cutoff is taken a moment after the count.
  await su.query(`CREATE TABLE chat_logs (id bigserial PRIMARY KEY, conversation_id int, body text, created_at timestamptz NOT NULL)`);
  await su.query(`CREATE INDEX ON chat_logs (created_at)`);
  await su.query(`INSERT INTO chat_logs (conversation_id, body, created_at)
                  SELECT k % 97, 'message ' || k, now() - make_interval(hours => k) - interval '30 minutes' FROM generate_series(0, 4799) k`);
  // conversations: one row per 6 hours over 100 days; an identity key and a generated column.
  await su.query(`CREATE TABLE conversations (
                    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    title text NOT NULL,
                    title_length int GENERATED ALWAYS AS (length(title)) STORED,
                    started_at timestamptz NOT NULL DEFAULT now(),
                    CHECK (length(title) > 0))`);
  await su.query(`INSERT INTO conversations (title, started_at)
                  SELECT 'conversation ' || k, now() - make_interval(hours => 6 * k) - interval '30 minutes' FROM generate_series(0, 399) k`);
  // The same shape under names that would break any SQL built by pasting them.
  await su.query(`CREATE SCHEMA ${q(TRICKY_SCHEMA)}`);
  await su.query(`CREATE TABLE ${q(TRICKY_SCHEMA)}.${q(TRICKY_TABLE)} (id bigserial PRIMARY KEY, ${q(TRICKY_COLUMN)} date NOT NULL)`);
  await su.query(`INSERT INTO ${q(TRICKY_SCHEMA)}.${q(TRICKY_TABLE)} (${q(TRICKY_COLUMN)}) SELECT current_date - k FROM generate_series(0, 199) k`);
  // For the refusals: a view, a text "date", the same table name in two schemas, a cascade.
  await su.query(`CREATE VIEW recent_logs AS SELECT * FROM chat_logs`);
  await su.query(`CREATE TABLE notes (id int, created_at text)`);
  await su.query(`CREATE SCHEMA other`);
  await su.query(`CREATE TABLE public.twin (id int, created_at timestamptz)`);
  await su.query(`CREATE TABLE other.twin (id int, created_at timestamptz)`);
  await su.query(`CREATE TABLE threads (id int PRIMARY KEY, started_at timestamptz NOT NULL)`);
  await su.query(`CREATE TABLE posts (id int PRIMARY KEY, thread_id int REFERENCES threads ON DELETE CASCADE)`);
  await su.query(`INSERT INTO threads SELECT k, now() - make_interval(days => k) FROM generate_series(1, 50) k`);
  await su.query(`INSERT INTO posts SELECT k, k FROM generate_series(1, 50) k`);
  await su.query(`CREATE TABLE conv_bad_archive (id int, title int, title_length int, started_at timestamptz)`);
  // tickets and an existing archive with its columns in another order and one more column.
  await su.query(`CREATE TABLE tickets (id int PRIMARY KEY, subject text NOT NULL, opened_at timestamptz NOT NULL)`);
  await su.query(`INSERT INTO tickets SELECT k, 'ticket ' || k, now() - make_interval(days => k) - interval '30 minutes' FROM generate_series(0, 99) k`);
  await su.query(`CREATE TABLE tickets_archive (archived_at timestamptz NOT NULL DEFAULT now(), opened_at timestamptz NOT NULL, subject text NOT NULL, id int PRIMARY KEY)`);

  configYaml = `
postgres:
  - name: primary
    url: ${primary.url({ db: 'app' })}
actions:
  cleanup:
    chat_logs:
      postgres: primary
      table: chat_logs
      column: created_at
      older_than: 90d
      batch_size: 500
      pause: 10ms
    tricky:
      postgres: primary
      schema: ${y(TRICKY_SCHEMA)}
      table: ${y(TRICKY_TABLE)}
      column: ${y(TRICKY_COLUMN)}
      older_than: 90d
      batch_size: 7
      pause: 0s
    missing_table: { postgres: primary, table: nope, column: created_at, older_than: 90d }
    missing_column: { postgres: primary, table: chat_logs, column: "created_at; DROP TABLE chat_logs", older_than: 90d }
    wrong_type: { postgres: primary, table: notes, column: created_at, older_than: 90d }
    a_view: { postgres: primary, table: recent_logs, column: created_at, older_than: 90d }
    ambiguous: { postgres: primary, table: twin, column: created_at, older_than: 90d }
    wrong_schema: { postgres: primary, schema: other, table: chat_logs, column: created_at, older_than: 90d }
  archive:
    conversations:
      postgres: primary
      table: conversations
      column: started_at
      archive_table: conversations_archive
      older_than: 30d
      batch_size: 50
      pause: 0s
    tricky:
      postgres: primary
      schema: ${y(TRICKY_SCHEMA)}
      table: ${y(TRICKY_TABLE)}
      column: ${y(TRICKY_COLUMN)}
      archive_table: ${y(TRICKY_ARCHIVE)}
      older_than: 30d
      batch_size: 10
      pause: 0s
    tickets:
      postgres: primary
      table: tickets
      column: opened_at
      archive_table: tickets_archive
      older_than: 30d
      batch_size: 1000
      pause: 0s
    cascade: { postgres: primary, table: threads, column: started_at, archive_table: threads_archive, older_than: 30d }
    no_create: { postgres: primary, table: tickets, column: opened_at, archive_table: nowhere, create_archive: false, older_than: 30d }
    bad_archive: { postgres: primary, table: conversations, column: started_at, archive_table: conv_bad_archive, older_than: 30d }
`;
  ctx = actionContext(configYaml);
  targets = ctx.targets;
});

after(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await su?.end().catch(() => {});
  if (targets) await closeTargets(targets);
  await primary?.destroy();
});

test('cleanup-old-rows and archive-old-rows: registered, strict params naming a config entry, idempotent', () => {
  for (const name of ['cleanup-old-rows', 'archive-old-rows']) {
    const a = action(name);
    assert.ok(a.description.length > 100 && /[Ii]dempotent/.test(a.description), `${name} says what it guarantees`);
    assert.equal(a.idempotent, true);
    assert.equal(a.disruptive, false);
    assert.match(a.targetKey(params(a, { entry: 'chat_logs' })), /^(cleanup|archive):chat_logs$/);
    // With the config, the key is the server the entry's table lives on.
    const cfg = configFrom(`
postgres: [{ name: primary, url: "postgres://u:p@127.0.0.1:1/app" }]
actions:
  cleanup: { chat_logs: { postgres: primary, table: chat_logs, column: created_at, older_than: 90d } }
  archive: { chat_logs: { postgres: primary, table: chat_logs, column: created_at, archive_table: chat_logs_archive, older_than: 30d } }
`);
    assert.equal(a.targetKey(params(a, { entry: 'chat_logs' }), cfg), 'postgres:primary');
    for (const extra of [{ table: 'users' }, { column: 'id' }, { older_than: '1s' }, { schema: 'public' }]) {
      assert.equal(Value.Check(a.params, { entry: 'x', ...extra }), false, `${name} refuses ${JSON.stringify(extra)}`);
    }
    assert.equal(Value.Check(a.params, { entry: 'x', max_batches: 0 }), false);
    assert.equal(Value.Check(a.params, { entry: 'x', max_seconds: 7200 }), false);
  }
});

test('config refuses an older_than under an hour and an archive that is its own source', () => {
  const base = (entry: string): string => `
postgres:
  - { name: primary, url: "postgres://u@127.0.0.1:1/db" }
actions:
${entry}`;
  assert.throws(
    () => configFrom(base('  cleanup:\n    x: { postgres: primary, table: t, column: c, older_than: 90s }')),
    /actions\.cleanup\.x\.older_than \(line \d+\): must be at least 1h/,
  );
  assert.throws(
    () => configFrom(base('  archive:\n    x: { postgres: primary, table: t, column: c, archive_table: t, older_than: 30d }')),
    /actions\.archive\.x\.archive_table .*must not be the source table/,
  );
  assert.throws(() => configFrom(base('  cleanup:\n    x: { postgres: nope, table: t, column: c, older_than: 30d }')), /no postgres target named "nope"/);
  // Identifiers are text up to 63 characters, never parsed: the catalog decides.
  const c = configFrom(base(`  cleanup:\n    x: { postgres: primary, table: ${y(TRICKY_TABLE)}, column: c, older_than: 2d, pause: 1s }`));
  assert.deepEqual(c.actions.cleanup['x'], { postgres: 'primary', schema: undefined, table: TRICKY_TABLE, column: 'c', olderThanMs: 2 * 86_400_000, batchSize: 1000, pauseMs: 1000 });
});

test('cleanup-old-rows removes exactly the chat logs older than 90 days, in batches, and keeps the rest', async () => {
  const cleanup = action('cleanup-old-rows');
  const oldCount = await count(`SELECT count(*) AS n FROM chat_logs WHERE created_at < now() - interval '90 days'`);
  const keep = await ids(`SELECT id FROM chat_logs WHERE created_at >= now() - interval '90 days'`);
  assert.equal(oldCount, 4800 - 2160, 'rows of hours 2160..4799 are older than 90 days');
  assert.equal(keep.length, 2160);

  const p = params(cleanup, { entry: 'chat_logs' });
  const plan = await cleanup.plan(ctx, p);
  assert.equal(plan.nothingToDo, false);
  assert.match(plan.summary, new RegExp(`^delete ${oldCount} rows of "public"\\."chat_logs" older than 90d \\("created_at" < \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\) on "primary", in batches of 500$`));
  assert.equal(await count('SELECT count(*) AS n FROM chat_logs'), 4800, 'plan changed nothing');

  // Two batches first: the batch is the unit of work.
  const partial = await cleanup.run(ctx, params(cleanup, { entry: 'chat_logs', max_batches: 2 }), AbortSignal.timeout(60_000));
  assert.equal(partial.details?.['rows'], 1000);
  assert.equal(partial.details?.['batches'], 2);
  assert.equal(partial.details?.['stopped_by'], 'max_batches');
  assert.equal(await count('SELECT count(*) AS n FROM chat_logs'), 4800 - 1000);
  const notYet = await cleanup.verify(ctx, p);
  assert.equal(notYet.fixed, false);
  assert.match(notYet.detail, new RegExp(`^${oldCount - 1000} rows of "public"\\."chat_logs" older than .* remain$`));

  const r = await cleanup.run(ctx, p, AbortSignal.timeout(60_000));
  assert.equal(r.details?.['rows'], oldCount - 1000);
  assert.equal(r.details?.['batches'], Math.ceil((oldCount - 1000) / 500));
  assert.equal(r.details?.['stopped_by'], null);
  assert.deepEqual(await ids('SELECT id FROM chat_logs'), keep, 'exactly the young rows remain');
  const v = await cleanup.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  assert.match(v.detail, /^no rows of "public"\."chat_logs" older than .* remain$/);

  // Idempotent: nothing left to do, and a second run deletes nothing.
  const again = await cleanup.plan(ctx, p);
  assert.equal(again.nothingToDo, true);
  assert.equal((await cleanup.run(ctx, p, AbortSignal.timeout(60_000))).details?.['rows'], 0);
  assert.deepEqual(await ids('SELECT id FROM chat_logs'), keep);
});

test('archive-old-rows moves exactly the conversations older than 30 days, batch by batch, into an archive it creates', async () => {
  const archive = action('archive-old-rows');
  const oldIds = await ids(`SELECT id FROM conversations WHERE started_at < now() - interval '30 days'`);
  const keep = await ids(`SELECT id FROM conversations WHERE started_at >= now() - interval '30 days'`);
  assert.equal(oldIds.length, 400 - 120, 'rows 120..399 (6 h apart) are older than 30 days');
  const before = (await su.query(`SELECT id, title, title_length, started_at FROM conversations WHERE id = ANY($1) ORDER BY id`, [oldIds])).rows;

  const p = params(archive, { entry: 'conversations' });
  const plan = await archive.plan(ctx, p);
  assert.equal(plan.nothingToDo, false);
  assert.match(plan.summary, /^move 280 rows of "public"\."conversations" older than 30d .* to "public"\."conversations_archive" \(created LIKE the source\) on "primary", in batches of 50$/);
  assert.equal(await count(`SELECT count(*) AS n FROM pg_class WHERE relname = 'conversations_archive'`), 0, 'plan created nothing');

  const r = await archive.run(ctx, p, AbortSignal.timeout(60_000));
  assert.equal(r.details?.['rows'], 280);
  assert.equal(r.details?.['batches'], Math.ceil(280 / 50));
  assert.equal(r.details?.['archive_created'], true);
  assert.deepEqual(await ids('SELECT id FROM conversations'), keep, 'the young conversations stay');
  assert.deepEqual(await ids('SELECT id FROM conversations_archive'), oldIds, 'exactly the old ones moved');
  // Rows keep their values, the identity key and the generated column included.
  const after = (await su.query(`SELECT id, title, title_length, started_at FROM conversations_archive ORDER BY id`)).rows;
  assert.deepEqual(after, before);
  // The archive is a plain copy: a primary key and the CHECK, no identity, no generation, no default.
  const cols = (
    await su.query<{ attname: string; attidentity: string; attgenerated: string; atthasdef: boolean }>(
      `SELECT attname, attidentity, attgenerated, atthasdef FROM pg_attribute WHERE attrelid = 'conversations_archive'::regclass AND attnum > 0 ORDER BY attnum`,
    )
  ).rows;
  assert.deepEqual(cols.map((c) => [c.attname, c.attidentity, c.attgenerated, c.atthasdef]), [
    ['id', '', '', false],
    ['title', '', '', false],
    ['title_length', '', '', false],
    ['started_at', '', '', false],
  ]);
  assert.equal(await count(`SELECT count(*) AS n FROM pg_constraint WHERE conrelid = 'conversations_archive'::regclass AND contype IN ('p', 'c')`), 2);

  const v = await archive.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  assert.match(v.detail, /no rows of "public"\."conversations" older than .* remain; "public"\."conversations_archive" gained 280 rows older than the cutoff \(the run moved 280\)/);
  // Idempotent: a second run finds nothing and moves nothing.
  assert.equal((await archive.plan(ctx, p)).nothingToDo, true);
  assert.equal((await archive.run(ctx, p, AbortSignal.timeout(60_000))).details?.['rows'], 0);
  assert.equal(await count('SELECT count(*) AS n FROM conversations_archive'), 280);
});

test('identifiers that carry quotes and SQL in config are looked up and quoted, never pasted', async () => {
  const table = `${q(TRICKY_SCHEMA)}.${q(TRICKY_TABLE)}`;
  const cleanup = action('cleanup-old-rows');
  const oldCount = await count(`SELECT count(*) AS n FROM ${table} WHERE ${q(TRICKY_COLUMN)} < now() - interval '90 days'`);
  assert.ok(oldCount > 100);
  const p = params(cleanup, { entry: 'tricky' });
  const plan = await cleanup.plan(ctx, p);
  assert.ok(plan.summary.startsWith(`delete ${oldCount} rows of "Ops ""Data"""."Chat Logs""; DROP TABLE chat_logs; --" older than 90d ("Created ""At""" <`), plan.summary);
  const r = await cleanup.run(ctx, p, AbortSignal.timeout(60_000));
  assert.equal(r.details?.['rows'], oldCount);
  assert.equal(r.details?.['batches'], Math.ceil(oldCount / 7));
  assert.equal((await cleanup.verify(ctx, p)).fixed, true);
  assert.equal(await count(`SELECT count(*) AS n FROM ${table}`), 200 - oldCount);

  const archive = action('archive-old-rows');
  const oldIds = await ids(`SELECT id FROM ${table} WHERE ${q(TRICKY_COLUMN)} < now() - interval '30 days'`);
  const ap = params(archive, { entry: 'tricky' });
  const ar = await archive.run(ctx, ap, AbortSignal.timeout(60_000));
  assert.equal(ar.details?.['rows'], oldIds.length);
  assert.deepEqual(await ids(`SELECT id FROM ${q(TRICKY_SCHEMA)}.${q(TRICKY_ARCHIVE)}`), oldIds);
  assert.equal((await archive.verify(ctx, ap)).fixed, true);
  // Nothing the names carried ran: chat_logs still holds its young rows.
  assert.equal(await count('SELECT count(*) AS n FROM chat_logs'), 2160);
});

test('a table or column not in the catalog, of the wrong kind or type, or ambiguous, is refused with a clear error', async () => {
  const cleanup = action('cleanup-old-rows');
  const archive = action('archive-old-rows');
  const refused = async (a: AnyAction, entry: string, message: RegExp): Promise<void> => {
    const p = params(a, { entry });
    await assert.rejects(a.plan(ctx, p), message, `plan of ${entry}`);
    await assert.rejects(a.run(ctx, p, AbortSignal.timeout(10_000)), message, `run of ${entry}`);
  };
  await refused(cleanup, 'missing_table', /^Error: actions\.cleanup\.missing_table: no table "nope" in the catalog of postgres target "primary"$/);
  await refused(cleanup, 'missing_column', /^Error: actions\.cleanup\.missing_column: "public"\."chat_logs" has no column "created_at; DROP TABLE chat_logs"$/);
  await refused(cleanup, 'wrong_type', /^Error: actions\.cleanup\.wrong_type: column "created_at" of "public"\."notes" is text, not timestamp, timestamptz or date$/);
  await refused(cleanup, 'a_view', /^Error: actions\.cleanup\.a_view: "public"\."recent_logs" is a view; cleanup-old-rows works on ordinary tables only$/);
  await refused(cleanup, 'ambiguous', /^Error: actions\.cleanup\.ambiguous: table "twin" exists in several schemas \("other", "public"\): set schema$/);
  await refused(cleanup, 'wrong_schema', /^Error: actions\.cleanup\.wrong_schema: no table "chat_logs" in schema "other" in the catalog/);
  await refused(cleanup, 'not_configured', /^Error: no entry named "not_configured" in config actions\.cleanup \(known: chat_logs, tricky, /);
  await refused(archive, 'cascade', /^Error: actions\.archive\.cascade: moving rows out of "public"\."threads" would fire ON DELETE CASCADE of "public"\."posts" \(posts_thread_id_fkey\)/);
  await refused(archive, 'no_create', /^Error: actions\.archive\.no_create: archive table "public"\."nowhere" does not exist and create_archive is false$/);
  await refused(archive, 'bad_archive', /^Error: actions\.archive\.bad_archive: column "title" is text in the source but integer in archive table "public"\."conv_bad_archive"$/);
  // Nothing was touched by any of them.
  assert.equal(await count('SELECT count(*) AS n FROM threads'), 50);
  assert.equal(await count('SELECT count(*) AS n FROM posts'), 50);
  assert.equal(await count(`SELECT count(*) AS n FROM pg_class WHERE relname IN ('nowhere', 'threads_archive')`), 0);
  // A label can never name a table: params take an entry name, and nothing else.
  assert.equal(Value.Check(cleanup.params, { entry: 'chat_logs', table: 'users' }), false);
  assert.equal(Value.Check(cleanup.params, { entry: 'chat_logs; DROP TABLE users' }), false);
});

test('cleanup aborted between batches has deleted whole batches only; the next run finishes', async () => {
  await su.query(`CREATE TABLE audit_events (id int PRIMARY KEY, at timestamptz NOT NULL)`);
  await su.query(`INSERT INTO audit_events SELECT k, now() - make_interval(days => k) - interval '30 minutes' FROM generate_series(0, 299) k`);
  const config = configFrom(`
postgres:
  - { name: primary, url: "${primary.url({ db: 'app' })}" }
actions:
  cleanup:
    audit: { postgres: primary, table: audit_events, column: at, older_than: 90d, batch_size: 40, pause: 10m }
`);
  const local: ActionContext = { ...ctx, config };
  const cleanup = action('cleanup-old-rows');
  const p = params(cleanup, { entry: 'audit' });
  const keep = await ids(`SELECT id FROM audit_events WHERE at >= now() - interval '90 days'`);
  const oldCount = 300 - keep.length;
  const ac = new AbortController();
  const run = cleanup.run(local, p, ac.signal);
  run.catch(() => {}); // awaited below
  // The first batch commits, then the run pauses (10 minutes): abort it there.
  await until('first batch committed', async () => (await count('SELECT count(*) AS n FROM audit_events')) < 300);
  ac.abort(new Error('alert resolved'));
  await assert.rejects(run, /^Error: alert resolved: stopped after 1 batches, 40 rows deleted \(each batch is one transaction/);
  assert.equal(await count('SELECT count(*) AS n FROM audit_events'), 300 - 40, 'one whole batch, nothing more');
  assert.equal(await count(`SELECT count(*) AS n FROM audit_events WHERE at >= now() - interval '90 days'`), keep.length, 'no young row touched');

  const fast = configFrom(`
postgres:
  - { name: primary, url: "${primary.url({ db: 'app' })}" }
actions:
  cleanup:
    audit: { postgres: primary, table: audit_events, column: at, older_than: 90d, batch_size: 40, pause: 0s }
`);
  const r = await cleanup.run({ ...ctx, config: fast }, p, AbortSignal.timeout(60_000));
  assert.equal(r.details?.['rows'], oldCount - 40);
  assert.deepEqual(await ids('SELECT id FROM audit_events'), keep);
  assert.equal((await cleanup.verify({ ...ctx, config: fast }, p)).fixed, true);
});

test('archive aborted in the middle of a batch leaves every row in exactly one table', async () => {
  const archive = action('archive-old-rows');
  const p = params(archive, { entry: 'tickets' });
  const oldIds = await ids(`SELECT id FROM tickets WHERE opened_at < now() - interval '30 days'`);
  const keep = await ids(`SELECT id FROM tickets WHERE opened_at >= now() - interval '30 days'`);
  assert.equal(oldIds.length, 70);
  // The existing archive has its columns in another order and one more (with a default).
  const plan = await archive.plan(ctx, p);
  assert.match(plan.summary, /^move 70 rows of "public"\."tickets" .* to "public"\."tickets_archive" on "primary", in batches of 1000$/);

  // The test inserts, without committing, an archive row with the key of an old ticket: the
  // batch's INSERT must wait for that transaction, after its DELETE has run.
  const blocker = new pg.Client({ connectionString: primary.url({ db: 'app' }), application_name: 'test-blocker' });
  await blocker.connect();
  clients.push(blocker);
  await blocker.query('BEGIN');
  await blocker.query(`INSERT INTO tickets_archive (id, subject, opened_at) VALUES ($1, 'placeholder', now())`, [oldIds[0]]);

  const ac = new AbortController();
  const run = archive.run(ctx, p, ac.signal);
  run.catch(() => {});
  const pid = await until('the batch waits on the blocker', async () => {
    const r = await one<{ pid: number } | undefined>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = 'housekeeper' AND wait_event_type = 'Lock' AND query LIKE 'WITH moved AS%'`,
    );
    return r?.pid;
  });
  ac.abort(new Error('shutting down'));
  await assert.rejects(run, /^Error: shutting down: stopped after 0 batches, 0 rows moved/);
  await blocker.query('ROLLBACK');
  // The server ends the batch's transaction without committing it (the connection is gone).
  await until('the aborted backend is gone', async () => (await count('SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1', [pid])) === 0);
  assert.deepEqual(await ids('SELECT id FROM tickets'), [...keep, ...oldIds].sort((a, b) => a - b), 'every ticket is still in the source');
  assert.equal(await count('SELECT count(*) AS n FROM tickets_archive'), 0, 'and none in the archive');

  // The next run moves them all, by column name, filling archived_at from its default.
  const r = await archive.run(ctx, p, AbortSignal.timeout(60_000));
  assert.equal(r.details?.['rows'], 70);
  assert.equal(r.details?.['archive_created'], false);
  assert.deepEqual(await ids('SELECT id FROM tickets'), keep);
  assert.deepEqual(await ids('SELECT id FROM tickets_archive'), oldIds);
  assert.equal(await count(`SELECT count(*) AS n FROM tickets_archive a JOIN (VALUES (1)) v(x) ON true WHERE a.subject = 'ticket ' || a.id AND a.archived_at IS NOT NULL`), 70);
  const v = await archive.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
});

test('through the engine: a schedule runs cleanup-old-rows on chat_logs, an alert runs archive-old-rows on conversations; both logged as fixed', async () => {
  await su.query('CREATE DATABASE hk_state');
  // Fresh old rows in both tables: the tests above have already cleaned them.
  await su.query(`INSERT INTO chat_logs (conversation_id, body, created_at)
                  SELECT k % 97, 'engine message ' || k, now() - interval '91 days' - make_interval(mins => k) FROM generate_series(0, 1199) k`);
  await su.query(`INSERT INTO conversations (title, started_at)
                  SELECT 'engine conversation ' || k, now() - interval '31 days' - make_interval(hours => k) FROM generate_series(0, 39) k`);
  const oldLogs = await ids(`SELECT id FROM chat_logs WHERE created_at < now() - interval '90 days'`);
  const keepLogs = await ids(`SELECT id FROM chat_logs WHERE created_at >= now() - interval '90 days'`);
  assert.ok(oldLogs.length >= 1200 && keepLogs.length > 0);
  const oldConvs = await ids(`SELECT id FROM conversations WHERE started_at < now() - interval '30 days'`);
  const keepConvs = await ids(`SELECT id FROM conversations WHERE started_at >= now() - interval '30 days'`);
  assert.ok(oldConvs.length >= 40 && keepConvs.length > 0);
  const archiveExists = (await one<{ t: string | null }>(`SELECT to_regclass('public.conversations_archive')::text AS t`)).t !== null;
  const archivedBefore = archiveExists ? await ids('SELECT id FROM conversations_archive') : [];
  const moving = (await su.query(`SELECT id, title, title_length, started_at FROM conversations WHERE id = ANY($1) ORDER BY id`, [oldConvs])).rows;

  // No shipped rule maps an alert to archive-old-rows (the calendar runs it on Mondays): the
  // alert here is a retention alert shaped like the shipped ones, its entry from a label.
  const rules = `
rules:
  - name: archive-conversations-past-retention
    matchers: ['alertname="ConversationsPastRetention"', 'remediation="archive-old-rows"']
    action: archive-old-rows
    params: { entry: "{{ $labels.entry }}" }
    max_attempts: 1
schedules:
  - name: chat-log-cleanup-every-two-seconds
    cron: "*/2 * * * * *"
    timezone: America/Los_Angeles
    action: cleanup-old-rows
    params: { entry: chat_logs }
`;
  const inst = await startInstance(
    `
state: { url: "${primary.url({ db: 'hk_state' })}" }
remediation:
  rules_dir: ${rulesDir(rules)}
${configYaml}`,
    actions,
  );
  try {
    const entries = async (query: string): Promise<Array<Record<string, unknown>>> => {
      const r = await fetch(`${inst.url}/api/remediations${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(r.status, 200);
      return ((await r.json()) as { items: Array<Record<string, unknown>> }).items;
    };

    const alert = { alertname: 'ConversationsPastRetention', remediation: 'archive-old-rows', entry: 'conversations', severity: 'warning' };
    assert.equal((await inst.post(notification([{ labels: alert }]))).status, 202);
    const archived = await engineUntil('archive-old-rows logged', async () => (await entries('?action=archive-old-rows')).find((e) => e['outcome'] !== 'running'), 60_000);
    assert.equal(archived['outcome'], 'fixed', JSON.stringify(archived));
    assert.equal(archived['trigger'], 'alert');
    assert.equal(archived['rule'], 'archive-conversations-past-retention');
    assert.equal(archived['alertname'], 'ConversationsPastRetention');
    assert.equal(archived['target'], 'postgres:primary');
    assert.equal((archived['params'] as Record<string, unknown>)['entry'], 'conversations', 'the entry came from the label');
    assert.match(String(archived['reason']), new RegExp(`^moved ${oldConvs.length} rows of "public"\\."conversations" older than \\S+ to "public"\\."conversations_archive".*; verify: no rows of`));
    assert.deepEqual(await ids('SELECT id FROM conversations'), keepConvs, 'the young conversations stay');
    assert.deepEqual(await ids('SELECT id FROM conversations_archive'), [...archivedBefore, ...oldConvs].sort((a, b) => a - b), 'exactly the old ones moved');
    const moved = (await su.query(`SELECT id, title, title_length, started_at FROM conversations_archive WHERE id = ANY($1) ORDER BY id`, [oldConvs])).rows;
    assert.deepEqual(moved, moving, 'with their values');

    // The schedule ticks every 2 s: the first scheduled time deletes, later ones find nothing.
    const rule = 'chat-log-cleanup-every-two-seconds';
    const runs = await engineUntil(
      'five scheduled cleanups logged',
      async () => {
        const all = await entries(`?rule=${rule}&limit=500`);
        return all.filter((e) => e['outcome'] !== 'running').length >= 5 && all;
      },
      60_000,
    );
    const outcomes = JSON.stringify(runs.map((e) => [e['starts_at'], e['outcome'], e['reason'] ?? e['error']]));
    for (const e of runs) {
      assert.equal(e['trigger'], 'schedule', outcomes);
      assert.equal(e['action'], 'cleanup-old-rows');
      assert.equal(e['target'], 'postgres:primary');
      assert.equal((e['params'] as Record<string, unknown>)['entry'], 'chat_logs');
      assert.match(String(e['starts_at']), /:\d[02468]\.000Z$/, 'starts_at is the scheduled time (an even second)');
    }
    const fixed = runs.filter((e) => e['outcome'] === 'fixed');
    assert.equal(fixed.length, 1, outcomes);
    assert.match(String(fixed[0]?.['reason']), new RegExp(`^deleted ${oldLogs.length} rows of "public"\\."chat_logs" older than \\S+ in ${Math.ceil(oldLogs.length / 500)} batches; verify: no rows of`));
    for (const e of runs.filter((x) => x !== fixed[0] && x['outcome'] !== 'running')) {
      assert.equal(e['outcome'], 'skipped', outcomes);
      assert.match(String(e['reason']), /^nothing to do: no rows of "public"\."chat_logs" older than 90d/);
    }
    const starts = runs.map((e) => String(e['starts_at']));
    assert.equal(new Set(starts).size, starts.length, `each scheduled time ran once: ${outcomes}`);
    assert.deepEqual(await ids('SELECT id FROM chat_logs'), keepLogs, 'exactly the young chat logs remain');
  } finally {
    await inst.close();
  }
});
