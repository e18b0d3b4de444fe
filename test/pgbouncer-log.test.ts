import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { startPgBouncer, type PgBouncerServer } from './harness/pgbouncer.ts';
import { find, scrapeUntil, startService, value, type Service } from './helpers/service.ts';
import { errorMessages, MAX_ERRMSGS, normaliseErrmsg, OTHER, READ_BUDGET } from '../src/collectors/pgbouncer-log.ts';
import { parseConfig } from '../src/config.ts';

// pgbouncer_errors_count from a real PgBouncer 1.18's logfile: real refusals, failed logins,
// admin console mistakes, logrotate-style rotation (rename + RELOAD) and truncation. The
// label cap and the per-scrape byte budget use a second target whose log file the test writes.

const MAX_CONN = 'no more connections allowed (max_client_conn)';

let primary: PgServer;
let bouncer: PgBouncerServer;
let svc: Service;
let scratch: string;
let synthetic: string;

before(async () => {
  primary = await startPostgres();
  bouncer = await startPgBouncer(primary, { maxClientConn: 3, logfile: true });
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hk-pgbouncer-log-'));
  synthetic = path.join(scratch, 'synthetic.log');
  svc = await startService(`
pgbouncer:
  - name: bouncer
    url: ${bouncer.adminUrl()}
    log_file: ${bouncer.logfile}
  - name: synthetic
    url: ${bouncer.adminUrl()}
    log_file: ${synthetic}
`);
  // The first scrape opens the log at its end: what came before is not counted.
  await scrapeUntil(svc, 'the log followed', (b) => value(b, 'pgbouncer_log_readable', { target: 'bouncer' }) === 1);
});

after(async () => {
  await svc?.close();
  await bouncer?.destroy();
  await primary?.destroy();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

const errors = (body: string, errmsg: string, target = 'bouncer'): number | undefined => value(body, 'pgbouncer_errors_count', { target, errmsg });

/** One client login that PgBouncer refuses; resolves with the error the client got. */
async function refused(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    return (err as Error).message;
  }
  await c.end();
  throw new Error('the login was accepted');
}

async function reload(): Promise<void> {
  const admin = new pg.Client({ connectionString: bouncer.adminUrl() });
  await admin.connect();
  try {
    await admin.query('RELOAD');
  } finally {
    await admin.end();
  }
}

test('refusals past max_client_conn count under the errmsg the community alert selects', async () => {
  const before = await svc.scrape();
  assert.equal(errors(before.body, MAX_CONN), 0, 'present at 0 before the first refusal, so rate() sees it');
  // No scrape runs while these are held, so every refusal is one of ours.
  const held: pg.Client[] = [];
  let refusals = 0;
  try {
    for (let i = 0; i < 5; i++) {
      const c = new pg.Client({ connectionString: bouncer.url() });
      c.on('error', () => {});
      try {
        await c.connect();
        held.push(c);
      } catch (err) {
        assert.equal((err as Error).message, MAX_CONN);
        refusals++;
      }
    }
  } finally {
    await Promise.all(held.map((c) => c.end()));
  }
  assert.ok(refusals >= 2, `max_client_conn 3 refuses some of 5 clients (refused ${refusals})`);
  const body = await scrapeUntil(svc, 'the refusals counted', (b) => errors(b, MAX_CONN) === refusals);
  assert.equal(value(body, 'pgbouncer_up', { target: 'bouncer' }), 1);
});

test('a refused password, an unknown database and an admin console mistake count once each, normalised', async () => {
  const wrong = bouncer.url().replace(/:[^:@/]*@/, ':not-the-password@');
  assert.equal(await refused(wrong), 'SASL authentication failed');
  await refused(bouncer.url('nosuchdb'));
  await refused(bouncer.url('otherdb'));
  const admin = new pg.Client({ connectionString: bouncer.adminUrl() });
  await admin.connect();
  await assert.rejects(admin.query('SHOW NONSENSE'), /invalid command/);
  await admin.end();
  const body = await scrapeUntil(svc, 'the three kinds counted', (b) => errors(b, "invalid command '?', use SHOW HELP;") === 1);
  // PgBouncer logs the refused password twice (ERROR, then the pooler error): one error.
  assert.equal(errors(body, 'SASL authentication failed'), 1);
  assert.equal(errors(body, 'password authentication failed'), undefined);
  // Both unknown names land in one series.
  assert.equal(errors(body, 'no such database: ?'), 2);
  // The password never reaches a label.
  assert.ok(!body.includes(primary.superPassword));
});

test('rotation (rename, RELOAD) and truncation keep counting every error once', async () => {
  const logfile = bouncer.logfile!;
  const unknownDb = 'no such database: ?';
  const start = errors(await svc.scrape().then((r) => r.body), unknownDb) ?? 0;
  await refused(bouncer.url('before_rotation'));
  await scrapeUntil(svc, 'one more', (b) => errors(b, unknownDb) === start + 1);
  fs.renameSync(logfile, `${logfile}.1`);
  // Written to the renamed file (PgBouncer keeps it open until RELOAD): drained, not lost.
  await refused(bouncer.url('into_old_file'));
  await reload();
  await refused(bouncer.url('into_new_file'));
  await scrapeUntil(svc, 'the old file drained and the new one read', (b) => errors(b, unknownDb) === start + 3);
  assert.ok(fs.existsSync(logfile), 'RELOAD reopened the logfile at its path');
  // Truncation in place (logrotate's copytruncate): PgBouncer appends from 0 again.
  fs.truncateSync(logfile, 0);
  await refused(bouncer.url('after_truncation'));
  const body = await scrapeUntil(svc, 'the truncated file read from its start', (b) => errors(b, unknownDb) === start + 4);
  assert.equal(value(body, 'pgbouncer_log_readable', { target: 'bouncer' }), 1);
});

test('a missing log file is a gauge, not a failed collection; the label cap and the read budget hold', async () => {
  let body = await scrapeUntil(svc, 'the missing file reported', (b) => value(b, 'pgbouncer_log_readable', { target: 'synthetic' }) === 0);
  assert.equal(value(body, 'pgbouncer_up', { target: 'synthetic' }), 1);
  assert.ok(svc.lines.some((l) => l.includes('PgBouncer log file unreadable') && l.includes('ENOENT')));
  // A file that appears later is read from its start. More distinct messages than the cap:
  const line = (word: string) => `2026-01-01 00:00:00.000 UTC [1] WARNING C-0x1: app/u@127.0.0.1:1 pooler error: synthetic failure ${word} happened\n`;
  const words = Array.from({ length: MAX_ERRMSGS + 10 }, (_, i) => `w${String.fromCharCode(97 + Math.floor(i / 26))}${String.fromCharCode(97 + (i % 26))}`);
  fs.writeFileSync(synthetic, words.map(line).join(''));
  body = await scrapeUntil(svc, 'the synthetic errors counted', (b) => value(b, 'pgbouncer_log_readable', { target: 'synthetic' }) === 1);
  const series = find(body, 'pgbouncer_errors_count', { target: 'synthetic' });
  assert.equal(series.filter((s) => s.labels['errmsg'] !== OTHER).length, MAX_ERRMSGS);
  // One place is the seeded max_client_conn series (0), so 49 words have their own series.
  assert.equal(errors(body, OTHER, 'synthetic'), words.length - (MAX_ERRMSGS - 1));
  assert.equal(errors(body, 'synthetic failure wab happened', 'synthetic'), 1);
  assert.ok(svc.lines.some((l) => l.includes('PgBouncer log file readable again')));

  // More than one scrape's budget appended at once: counted over several scrapes, none lost.
  const big = line('waa');
  const n = Math.ceil((READ_BUDGET * 1.5) / big.length);
  fs.appendFileSync(synthetic, big.repeat(n));
  body = (await svc.scrape()).body;
  const first = errors(body, 'synthetic failure waa happened', 'synthetic') ?? 0;
  assert.ok(first < 1 + n, `one scrape reads at most ${READ_BUDGET} bytes (counted ${first - 1} of ${n})`);
  await scrapeUntil(svc, 'the rest read by later scrapes', (b) => errors(b, 'synthetic failure waa happened', 'synthetic') === 1 + n);
});

test('normalisation and what counts, on PgBouncer 1.18 lines', () => {
  const p = '2026-12-02 13:10:39.501 UTC [13545]';
  const lines = [
    `${p} ERROR C-0x563b6ec88dd0: app/postgres@127.0.0.1:46502 password authentication failed`,
    `${p} LOG C-0x563b6ec88dd0: app/postgres@127.0.0.1:46502 closing because: SASL authentication failed (age=0s)`,
    `${p} WARNING C-0x563b6ec88dd0: app/postgres@127.0.0.1:46502 pooler error: SASL authentication failed`,
    `${p} ERROR invalid command 'SHOW NONSENSE', use SHOW HELP;`,
    `${p} WARNING C-0x563b6ec88dd0: pgbouncer/pgbouncer_admin@127.0.0.1:46520 pooler error: invalid command 'SHOW NONSENSE', use SHOW HELP;`,
    `${p} ERROR accept() failed: Too many open files`,
    `${p} LOG S-0x563b6ec93d30: app/postgres@127.0.0.1:35065 closing because: server conn crashed? (age=3s)`,
    `${p} WARNING S-0x563b6ec93d30: app/postgres@127.0.0.1:35065 server login failed: FATAL database "gone" does not exist`,
  ];
  assert.deepEqual(errorMessages(lines).map(normaliseErrmsg), [
    'SASL authentication failed',
    "invalid command '?', use SHOW HELP;",
    'accept() failed: Too many open files',
    'server login failed: FATAL database "?" does not exist',
  ]);
  assert.equal(normaliseErrmsg('query_wait_timeout'), 'query_wait_timeout');
  assert.equal(normaliseErrmsg('could not connect to 10.0.0.7:5432 after 3 tries'), 'could not connect to ADDR after N tries');
  assert.equal(normaliseErrmsg('no such user: alice'), 'no such user: ?');
  assert.equal(normaliseErrmsg(MAX_CONN), MAX_CONN);
});

test('log_file is resolved against the config file, like the other paths', () => {
  const cfg = parseConfig('pgbouncer:\n  - { name: b, url: "postgres://u:p@127.0.0.1:6432/pgbouncer", log_file: logs/pgbouncer.log }\n  - { name: c, url: "postgres://u:p@127.0.0.1:6433/pgbouncer" }\n', '/etc/hk/housekeeper.yml');
  assert.deepEqual(cfg.pgbouncer.map((t) => t.logFile), ['/etc/hk/logs/pgbouncer.log', undefined]);
});
