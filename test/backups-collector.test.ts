// The backups collector against real files: backup directories with good, stale, corrupt
// (a manifest that lies about the checksum) and foreign backups; a real `pg_dump -Fc`
// archive from a real Postgres 15 that verifies, and a truncated copy that fails
// `pg_restore --list`; a missing directory; entries that cannot be read. Tests run as root,
// and root reads through chmod 000, so "unreadable" is made honestly: a dangling symlink
// (stat fails with ENOENT), a FIFO (not a regular file; opening it for reading would block,
// which the collector must never do), and a directory handed to the hasher (read fails with
// EISDIR). Metrics are read through /metrics of the real service.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { configFrom } from './helpers/config.ts';
import { find, scrapeUntil, startService, value, type Service } from './helpers/service.ts';
import { holdsCredentials, manifestPath, parseManifest, publishBackup, type NewManifest } from '../src/backups/manifest.ts';
import { appendRestoreTest, readRestoreTests, RESTORE_TESTS_FILE, type RestoreTestRecord } from '../src/backups/restore-tests.ts';
import { sha256File } from '../src/backups/hash.ts';
import { pgRestoreList } from '../src/backups/verify.ts';
import { ConfigError } from '../src/config.ts';

const run = promisify(execFile);
const PG_BIN = process.env['HOUSEKEEPER_PG_BIN'] ?? '/usr/lib/postgresql/15/bin';
const T = { target: 'backups' };
const epoch = (iso: string): number => Date.parse(iso) / 1000;

const roots: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  roots.push(d);
  return d;
}

/** A backup as backup-run will make it: data under a hidden temp name, then publishBackup. */
async function housekeeperBackup(dir: string, name: string, data: Buffer | { copyOf: string }, m: NewManifest): Promise<void> {
  const tmp = join(dir, `.${name}.partial`);
  if (Buffer.isBuffer(data)) writeFileSync(tmp, data);
  else copyFileSync(data.copyOf, tmp);
  await publishBackup(tmp, name, m);
}

function foreignBackup(dir: string, name: string, bytes: number, mtimeIso: string): void {
  const p = join(dir, name);
  writeFileSync(p, randomBytes(bytes));
  utimesSync(p, epoch(mtimeIso), epoch(mtimeIso));
}

const dumpManifest = (createdAt: string): NewManifest => ({
  kind: 'database',
  format: 'pg_dump_custom',
  tool: { name: 'pg_dump', version: '15' },
  source: { type: 'postgres', target: 'primary', database: 'app' },
  createdAt: new Date(createdAt),
});
const fileManifest = (kind: NewManifest['kind'], createdAt: string, format = 'file'): NewManifest => ({
  kind,
  format,
  tool: { name: 'housekeeper', version: '0.1.0' },
  source: { type: 'file', path: `/srv/${kind}` },
  createdAt: new Date(createdAt),
});

function config(dir: string, extra = ''): string {
  return `
backups:
  directory: ${dir}
${extra}  kinds:
    database: { pattern: "app-*.dump" }
    vector_index: { pattern: "faiss-*.index" }
    configuration: { pattern: "config-*.tar" }
    document_store: { pattern: "docs-*.tar.gz" }
    secrets: { pattern: "secrets-*.age" }
`;
}

let db: PgServer;
let work: string;
let dump: string;

before(async () => {
  db = await startPostgres();
  const client = new pg.Client({ connectionString: db.url({ db: 'app' }) });
  await client.connect();
  try {
    await client.query('CREATE TABLE documents (id int PRIMARY KEY, body text NOT NULL)');
    await client.query("INSERT INTO documents SELECT g, repeat('lorem ipsum ', 20) || g FROM generate_series(1, 2000) g");
  } finally {
    await client.end();
  }
  work = tempDir('hk-backups-work-');
  dump = join(work, 'app.dump');
  // A real custom-format archive, run as argv with a timeout, never through a shell.
  await run(join(PG_BIN, 'pg_dump'), ['-Fc', '-f', dump, db.url({ db: 'app' })], { timeout: 60_000 });
  assert.equal(readFileSync(dump).subarray(0, 5).toString('latin1'), 'PGDMP');
});

after(async () => {
  await db?.destroy();
  for (const d of roots) rmSync(d, { recursive: true, force: true });
});

describe('a directory with good, stale, corrupt, foreign and unreadable backups', () => {
  let dir: string;
  let svc: Service;
  const SECRET = `hunter2-${randomBytes(8).toString('hex')}`;

  before(async () => {
    dir = tempDir('hk-backups-a-');
    // database: two real dumps; the newer one is the one reported.
    await housekeeperBackup(dir, 'app-2026-01-01.dump', { copyOf: dump }, dumpManifest('2026-01-01T02:00:00Z'));
    await housekeeperBackup(dir, 'app-2026-01-02.dump', { copyOf: dump }, dumpManifest('2026-01-02T02:00:00Z'));
    symlinkSync(join(dir, 'gone.dump'), join(dir, 'app-broken.dump')); // dangling: cannot be stat'ed
    writeFileSync(join(dir, '.app-2026-01-03.dump.partial'), 'a backup still being written');
    // vector_index: the newest one's manifest lies about its checksum (same size, other bytes).
    await housekeeperBackup(dir, 'faiss-2026-01-01.index', randomBytes(64 * 1024), fileManifest('vector_index', '2026-01-01T03:00:00Z', 'faiss_index'));
    await housekeeperBackup(dir, 'faiss-2026-01-02.index', randomBytes(64 * 1024), fileManifest('vector_index', '2026-01-02T03:00:00Z', 'faiss_index'));
    writeFileSync(join(dir, 'faiss-2026-01-02.index'), randomBytes(64 * 1024));
    // configuration: good but stale, and a FIFO named like a backup.
    await housekeeperBackup(dir, 'config-2020-01-01.tar', randomBytes(10_000), fileManifest('configuration', '2020-01-01T00:00:00Z', 'tar'));
    await run('mkfifo', [join(dir, 'config-fifo.tar')]);
    // document_store: only another tool's backups, no manifest.
    foreignBackup(dir, 'docs-a.tar.gz', 1234, '2026-01-01T04:00:00Z');
    foreignBackup(dir, 'docs-b.tar.gz', 2345, '2026-01-02T04:00:00Z');
    // secrets: a good one holding a secret, and an older one whose manifest carries a URL
    // with a password (the writer refuses that; this one was written by hand).
    await housekeeperBackup(dir, 'secrets-2026-01-02.age', Buffer.from(`DB_PASSWORD=${SECRET}\n`), fileManifest('secrets', '2026-01-02T05:00:00Z', 'age'));
    const leaky = Buffer.from('old secrets\n');
    writeFileSync(join(dir, 'secrets-2026-01-01.age'), leaky);
    writeFileSync(
      manifestPath(join(dir, 'secrets-2026-01-01.age')),
      JSON.stringify({
        manifest_version: 1,
        kind: 'secrets',
        file: 'secrets-2026-01-01.age',
        created_at: '2026-01-01T05:00:00Z',
        size_bytes: leaky.length,
        sha256: createHash('sha256').update(leaky).digest('hex'),
        format: 'age',
        tool: { name: 'by-hand', version: '1' },
        source: { type: 'postgres', path: `postgres://admin:${SECRET}@db1/app` },
      }),
    );
    // An invalid manifest's created_at is not trusted: the file's mtime stands for it.
    utimesSync(join(dir, 'secrets-2026-01-01.age'), epoch('2026-01-01T05:00:00Z'), epoch('2026-01-01T05:00:00Z'));
    // restore tests: database passed, then failed; vector_index passed; one garbage line.
    const rec = (kind: RestoreTestRecord['kind'], backup: string, finished: string, success: boolean): RestoreTestRecord => ({
      record_version: 1,
      kind,
      backup,
      started_at: finished.replace('10:00:00', '09:58:00'),
      finished_at: finished,
      success,
      target: 'primary',
      scratch_database: 'housekeeper_restore_test',
      checks: [{ name: 'public.documents rows', expected: 2000, actual: success ? 2000 : null, ok: success }],
      error: success ? null : 'pg_restore: error: could not read from input file',
    });
    await appendRestoreTest(dir, rec('database', 'app-2026-01-01.dump', '2026-01-03T10:00:00Z', true));
    writeFileSync(join(dir, RESTORE_TESTS_FILE), 'not json at all\n', { flag: 'a' });
    await appendRestoreTest(dir, rec('database', 'app-2026-01-02.dump', '2026-01-10T10:00:00Z', false));
    await appendRestoreTest(dir, rec('vector_index', 'faiss-2026-01-01.index', '2026-01-04T10:00:00Z', true));

    svc = await startService(config(dir));
  });
  after(() => svc?.close());

  test('listing: counts by source, newest time and size, the stale one as it is', async () => {
    const body = (await svc.scrape()).body;
    assert.equal(value(body, 'housekeeper_collector_success', { collector: 'backups', target: 'backups' }), 1);
    assert.equal(value(body, 'backup_directory_readable', T), 1);
    const k = (kind: string, source: string) => ({ ...T, kind, source });
    // the dangling link and the in-progress temp file are not backups
    assert.equal(value(body, 'backup_files', k('database', 'housekeeper')), 2);
    assert.equal(value(body, 'backup_files', k('database', 'foreign')), 0);
    assert.equal(value(body, 'backup_last_timestamp_seconds', k('database', 'housekeeper')), epoch('2026-01-02T02:00:00Z'));
    assert.equal(value(body, 'backup_last_size_bytes', k('database', 'housekeeper')), readFileSync(dump).length);
    assert.equal(value(body, 'backup_last_timestamp_seconds', k('database', 'foreign')), 0);
    assert.equal(value(body, 'backup_last_timestamp_seconds', k('configuration', 'housekeeper')), epoch('2020-01-01T00:00:00Z'));
    assert.equal(value(body, 'backup_files', k('configuration', 'housekeeper')), 1, 'the FIFO is not counted');
    // foreign: file time and size only
    assert.equal(value(body, 'backup_files', k('document_store', 'foreign')), 2);
    assert.equal(value(body, 'backup_files', k('document_store', 'housekeeper')), 0);
    assert.equal(value(body, 'backup_last_timestamp_seconds', k('document_store', 'foreign')), epoch('2026-01-02T04:00:00Z'));
    assert.equal(value(body, 'backup_last_size_bytes', k('document_store', 'foreign')), 2345);
    assert.equal(value(body, 'backup_files', k('secrets', 'housekeeper')), 2);
  });

  test('promtool check metrics: no warning on the backup families', async () => {
    const body = (await svc.scrape()).body;
    const ours = body.split('\n').filter((l) => /^(# (HELP|TYPE) )?backup_/.test(l)).join('\n') + '\n';
    assert.match(ours, /^backup_files\{/m, 'the lint saw the per-kind series');
    // promtool exits 1 on warnings, printing them on stdout; 0 and no output when clean.
    const r = await new Promise<{ code: number | null; out: string }>((res) => {
      const p = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }));
      p.stdin?.end(ours);
    });
    assert.deepEqual({ code: r.code, out: r.out.trim() }, { code: 0, out: '' });
  });

  test('verification: good dumps pass, a checksum lie fails, the older good one is the last verified', async () => {
    const body = await scrapeUntil(svc, 'verification of every kind', (b) =>
      ['database', 'vector_index', 'configuration', 'secrets'].every((kind) => (value(b, 'backup_last_verified_timestamp_seconds', { ...T, kind }) ?? 0) > 0) &&
      (value(b, 'backup_last_good_timestamp_seconds', { ...T, kind: 'vector_index' }) ?? 0) > 0,
    );
    const v = (name: string, kind: string) => value(body, name, { ...T, kind });
    assert.equal(v('backup_last_verified_success', 'database'), 1);
    assert.equal(v('backup_last_good_timestamp_seconds', 'database'), epoch('2026-01-02T02:00:00Z'));
    assert.equal(v('backup_last_verified_success', 'vector_index'), 0);
    assert.equal(v('backup_last_good_timestamp_seconds', 'vector_index'), epoch('2026-01-01T03:00:00Z'));
    assert.equal(v('backup_last_verified_success', 'configuration'), 1);
    assert.equal(v('backup_last_good_timestamp_seconds', 'configuration'), epoch('2020-01-01T00:00:00Z'));
    assert.equal(v('backup_last_verified_success', 'secrets'), 1);
    // foreign backups are never verified
    assert.equal(v('backup_last_verified_success', 'document_store'), 0);
    assert.equal(v('backup_last_verified_timestamp_seconds', 'document_store'), 0);
    assert.equal(v('backup_last_good_timestamp_seconds', 'document_store'), 0);
    const err = (reason: string) => value(body, 'backup_errors', { ...T, reason });
    assert.equal(err('checksum_mismatch'), 1);
    assert.equal(err('file_unreadable'), 2, 'the dangling link and the FIFO');
    assert.equal(err('manifest_invalid'), 1, 'the manifest holding a URL with a password');
    assert.equal(err('directory_unreadable'), 0);
    assert.equal(err('dump_unreadable'), 0);
    assert.equal(err('size_mismatch'), 0);
    assert.equal(err('verify_incomplete'), 0);
    assert.ok(svc.lines.some((l) => l.includes('faiss-2026-01-02.index') && l.includes('checksum_mismatch')), 'the lie is logged by file name');
  });

  test('restore tests: last success per kind, latest outcome, invalid lines counted', async () => {
    const body = (await svc.scrape()).body;
    const v = (name: string, kind: string) => value(body, name, { ...T, kind });
    assert.equal(v('backup_last_restore_test_timestamp_seconds', 'database'), epoch('2026-01-03T10:00:00Z'));
    assert.equal(v('backup_last_restore_test_success', 'database'), 0, 'the latest test failed');
    assert.equal(v('backup_last_restore_test_timestamp_seconds', 'vector_index'), epoch('2026-01-04T10:00:00Z'));
    assert.equal(v('backup_last_restore_test_success', 'vector_index'), 1);
    assert.equal(v('backup_last_restore_test_timestamp_seconds', 'configuration'), 0);
    assert.equal(find(body, 'backup_last_restore_test_success', { ...T, kind: 'configuration' }).length, 0, 'absent before the first test');
    assert.equal(value(body, 'backup_errors', { ...T, reason: 'restore_log_invalid' }), 1);
  });

  test('secrets stay out of manifests, metrics and logs', async () => {
    const body = (await svc.scrape()).body;
    const manifest = readFileSync(manifestPath(join(dir, 'secrets-2026-01-02.age')), 'utf8');
    assert.ok(!manifest.includes(SECRET));
    assert.equal(parseManifest(manifest).kind, 'secrets');
    assert.ok(!body.includes(SECRET));
    assert.ok(!svc.lines.some((l) => l.includes(SECRET)), 'no log line quotes the bad manifest');
    assert.ok(svc.lines.some((l) => l.includes('secrets-2026-01-01.age') && l.includes('credentials')));
    // and the writer refuses such a manifest outright
    const tmp = join(dir, '.secrets-x.partial');
    writeFileSync(tmp, 'x');
    await assert.rejects(
      publishBackup(tmp, 'secrets-x.age', { ...fileManifest('secrets', '2026-01-03T00:00:00Z'), source: { type: 'file', path: 'redis://:pw@cache:6379' } }),
      /credentials/,
    );
    rmSync(tmp);
  });
});

describe('a truncated dump whose manifest matches its bytes', () => {
  let svc: Service;
  before(async () => {
    const dir = tempDir('hk-backups-b-');
    await housekeeperBackup(dir, 'app-2026-01-01.dump', { copyOf: dump }, dumpManifest('2026-01-01T02:00:00Z'));
    // Cut inside the archive's table of contents: the checksum matches (the manifest was
    // made for these bytes), so only pg_restore can tell.
    await housekeeperBackup(dir, 'app-2026-01-02.dump', readFileSync(dump).subarray(0, 512), dumpManifest('2026-01-02T02:00:00Z'));
    // A "backup" whose every read fails in the kernel (EIO), even for root: a link to
    // /proc/self/mem (a regular file of size 0; reading offset 0 of our own memory fails).
    symlinkSync('/proc/self/mem', join(dir, 'faiss-2026-01-02.index'));
    writeFileSync(
      manifestPath(join(dir, 'faiss-2026-01-02.index')),
      JSON.stringify({
        manifest_version: 1,
        kind: 'vector_index',
        file: 'faiss-2026-01-02.index',
        created_at: '2026-01-02T03:00:00Z',
        size_bytes: 0,
        sha256: createHash('sha256').digest('hex'),
        format: 'faiss_index',
        tool: { name: 'housekeeper', version: '0.1.0' },
        source: { type: 'faiss', target: 'docs' },
      }),
    );
    svc = await startService(config(dir));
  });
  after(() => svc?.close());

  test('fails pg_restore --list; the good older dump is the last verified', async () => {
    const body = await scrapeUntil(svc, 'database verification', (b) => (value(b, 'backup_last_good_timestamp_seconds', { ...T, kind: 'database' }) ?? 0) > 0);
    assert.equal(value(body, 'backup_last_verified_success', { ...T, kind: 'database' }), 0);
    assert.ok((value(body, 'backup_last_verified_timestamp_seconds', { ...T, kind: 'database' }) ?? 0) > 0);
    assert.equal(value(body, 'backup_last_good_timestamp_seconds', { ...T, kind: 'database' }), epoch('2026-01-01T02:00:00Z'));
    assert.equal(value(body, 'backup_errors', { ...T, reason: 'dump_unreadable' }), 1);
    assert.equal(value(body, 'backup_errors', { ...T, reason: 'checksum_mismatch' }), 0);
    assert.ok(svc.lines.some((l) => l.includes('app-2026-01-02.dump') && l.includes('pg_restore --list exited')));
    // the unreadable one: not judged (retried later), counted, logged with its errno
    await scrapeUntil(svc, 'the unreadable index tried', (b) => value(b, 'backup_errors', { ...T, reason: 'file_unreadable' }) === 1);
    const b2 = (await svc.scrape()).body;
    assert.equal(value(b2, 'backup_last_verified_success', { ...T, kind: 'vector_index' }), 0);
    assert.equal(value(b2, 'backup_last_verified_timestamp_seconds', { ...T, kind: 'vector_index' }), 0);
    assert.ok(svc.lines.some((l) => l.includes('faiss-2026-01-02.index') && l.includes('EIO')));
  });
});

test('a missing directory is a metric, not a failed scrape', async () => {
  const svc = await startService(config(join(tempDir('hk-backups-c-'), 'not-there')));
  try {
    const r = await svc.scrape();
    assert.equal(r.status, 200);
    assert.equal(value(r.body, 'housekeeper_collector_success', { collector: 'backups', target: 'backups' }), 1);
    assert.equal(value(r.body, 'backup_directory_readable', T), 0);
    assert.equal(value(r.body, 'backup_errors', { ...T, reason: 'directory_unreadable' }), 1);
    assert.equal(find(r.body, 'backup_files').length, 0, 'unknown is not zero: no per-kind series');
  } finally {
    await svc.close();
  }
});

test('verification is off the scrape path and cached by file identity', async () => {
  const dir = tempDir('hk-backups-d-');
  const idx = join(dir, 'faiss-2026-02-01.index');
  const size = 8 * 1024 * 1024;
  await housekeeperBackup(dir, 'faiss-2026-02-01.index', randomBytes(size), fileManifest('vector_index', '2026-02-01T03:00:00Z', 'faiss_index'));
  const mtime = epoch('2026-02-01T03:00:05Z'); // whole seconds, so it can be put back exactly
  utimesSync(idx, mtime, mtime);
  const svc = await startService(config(dir, '  verify_interval: 100ms\n'));
  try {
    const vi = { ...T, kind: 'vector_index' };
    // The first scrape stages its answer before it starts the background pass: pending.
    const first = (await svc.scrape()).body;
    assert.equal(value(first, 'backup_last_verified_timestamp_seconds', vi), 0);
    assert.equal(value(first, 'backup_last_verified_success', vi), 0);
    await scrapeUntil(svc, 'the index verified', (b) => value(b, 'backup_last_verified_success', vi) === 1);

    // Rewrite the bytes in place, same size, same mtime: same identity, so not hashed again.
    writeFileSync(idx, randomBytes(size));
    utimesSync(idx, mtime, mtime);
    // A new backup of another kind; the pass that verifies it walks vector_index first.
    await housekeeperBackup(dir, 'config-2026-02-01.tar', randomBytes(1000), fileManifest('configuration', '2026-02-01T04:00:00Z', 'tar'));
    const cached = await scrapeUntil(svc, 'the new backup verified', (b) => value(b, 'backup_last_verified_success', { ...T, kind: 'configuration' }) === 1);
    assert.equal(value(cached, 'backup_last_verified_success', vi), 1, 'same identity: the cached verdict stands');

    // A new mtime is a new identity: verified again, and now the lie shows.
    utimesSync(idx, mtime + 1, mtime + 1);
    const after = await scrapeUntil(svc, 'the rewritten index re-verified', (b) => value(b, 'backup_errors', { ...T, reason: 'checksum_mismatch' }) === 1);
    assert.equal(value(after, 'backup_last_verified_success', vi), 0);
    assert.ok((value(after, 'backup_last_verified_timestamp_seconds', vi) ?? 0) > 0);
  } finally {
    await svc.close();
  }
});

describe('helpers the backup actions will share', () => {
  test('the hasher reports a read failure and refuses what is not a regular file, FIFOs included, without blocking', async () => {
    const dir = tempDir('hk-backups-e-');
    await assert.rejects(sha256File('/proc/self/mem'), { code: 'EIO' });
    mkdirSync(join(dir, 'a-directory'));
    await assert.rejects(sha256File(join(dir, 'a-directory')), { code: 'ENOTREGULAR' });
    await run('mkfifo', [join(dir, 'fifo')]);
    await assert.rejects(sha256File(join(dir, 'fifo')), { code: 'ENOTREGULAR' });
  });

  test('pg_restore --list: the real dump lists, a missing binary is transient, not a corrupt dump', async () => {
    assert.deepEqual(await pgRestoreList(dump, { bin: join(PG_BIN, 'pg_restore') }), { ok: true });
    const r = await pgRestoreList(dump, { bin: join(tempDir('hk-backups-f-'), 'no-pg_restore') });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.transient, true);
  });

  test('a restore-test append after a torn line starts a new line', async () => {
    const dir = tempDir('hk-backups-g-');
    writeFileSync(join(dir, RESTORE_TESTS_FILE), '{"record_version":1,"kind":"data');
    await appendRestoreTest(dir, { record_version: 1, kind: 'database', backup: 'app.dump', finished_at: '2026-03-06T10:00:00Z', success: true });
    const s = await readRestoreTests(join(dir, RESTORE_TESTS_FILE));
    assert.equal(s.invalid, 1);
    assert.equal(s.lastSuccess.get('database'), epoch('2026-03-06T10:00:00Z'));
    await assert.rejects(
      appendRestoreTest(dir, { record_version: 1, kind: 'database', backup: 'a/b.dump', finished_at: '2026-03-06T10:00:00Z', success: true }),
      /invalid record/,
    );
  });

  test('what counts as a credential in a manifest or record', () => {
    assert.equal(holdsCredentials({ source: { path: 'postgres://app:s3cret@db1/app' } }), true);
    assert.equal(holdsCredentials({ source: { path: 'host=db1 user=app password=s3cret' } }), true);
    assert.equal(holdsCredentials({ source: { path: 'https://es1:9200/_snapshot?password=s3cret' } }), true);
    assert.equal(holdsCredentials({ source: { path: 'postgres://app@db1:5432/app' } }), false);
    assert.equal(holdsCredentials({ source: { path: '/etc/housekeeper/passwords.age' } }), false);
  });

  test('a pattern with "/" stops the service at boot', () => {
    assert.throws(() => configFrom('backups:\n  directory: /srv/backups\n  kinds:\n    database: { pattern: "db/*.dump" }\n'), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /backups\.kinds\.database\.pattern/);
      return true;
    });
  });
});
