import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import pg from 'pg';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { startRedis, type RedisServer } from './harness/redis.ts';
import { writeConfigFile } from './helpers/config.ts';

// `housekeeper check`: the morning check as a person runs it, against real servers.

const root = resolve(import.meta.dirname, '..');
let pgs: PgServer;
let redis: RedisServer;
let configFile: string;

before(async () => {
  [pgs, redis] = await Promise.all([startPostgres(), startRedis({ maxmemory: '64mb' })]);
  configFile = writeConfigFile(`
server: { scrape_timeout: 3s }
postgres:
  - { name: primary, url: "${pgs.url({ db: 'app', user: 'housekeeper' })}" }
redis:
  - { name: cache, url: "${redis.url(0)}" }
`);
});
after(async () => {
  await redis?.destroy();
  await pgs?.destroy();
});

function run(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    const p = spawn(resolve(root, 'bin/housekeeper'), ['check', ...args], { env: { ...process.env, HOUSEKEEPER_CONFIG: configFile } });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('close', (code) => res({ code, out, err }));
  });
}

test('all green: exit 0 and a table of what was checked', async () => {
  const r = await run();
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^STATUS\s+CHECK\s+TARGET\s+VALUE\s+RUNBOOK$/m);
  assert.match(r.out, /^OK\s+postgres connections\s+primary\s+\d+\/\d+ \(\d+\.\d%\)\s+< 80% of usable$/m);
  assert.match(r.out, /^OK\s+redis reachable\s+cache/m);
  assert.match(r.out, /all \d+ checks green/);
  assert.ok(!r.out.includes(pgs.monitorPassword) && !r.out.includes(redis.password));
});

test('a down Redis: exit 1, the failure first, and --json says the same', async () => {
  await redis.stop();
  try {
    const r = await run();
    assert.equal(r.code, 1);
    const lines = r.out.split('\n');
    assert.match(lines[1] ?? '', /^FAIL\s+redis reachable\s+cache\s+down\s+up$/);
    const j = await run('--json');
    assert.equal(j.code, 1);
    const parsed = JSON.parse(j.out) as { ok: boolean; checks: Array<{ check: string; status: string; target: string }> };
    assert.equal(parsed.ok, false);
    assert.equal(parsed.checks.find((c) => c.check === 'redis reachable')?.status, 'fail');
    assert.equal(parsed.checks.find((c) => c.check === 'postgres reachable')?.status, 'ok');
  } finally {
    await redis.start();
  }
});

test('a bad config: exit 2 naming the field', async () => {
  const saved = configFile;
  configFile = writeConfigFile('redis:\n  - { name: cache }\n');
  try {
    const r = await run();
    assert.equal(r.code, 2);
    assert.match(r.err, /redis\[0\] \(line 2\): give exactly one of url and url_file/);
  } finally {
    configFile = saved;
  }
});

test('certificates, backups: an expiring certificate warns, a missing backup directory fails', async () => {
  const { CertFactory } = await import('./harness/tls.ts');
  const certs = await CertFactory.create();
  try {
    const now = Math.floor(Date.now() / 1000);
    const soon = await certs.issue({ cn: 'soon.test', notBefore: now - 86_400, notAfter: now + 10 * 86_400, serial: 7n });
    const fine = await certs.issue({ cn: 'fine.test', notBefore: now - 86_400, notAfter: now + 200 * 86_400, serial: 8n });
    const saved = configFile;
    configFile = writeConfigFile(`
certificates:
  - { name: soon, file: ${await certs.write('soon.pem', soon)} }
  - { name: fine, file: ${await certs.write('fine.pem', fine)} }
backups:
  directory: /nonexistent/backups
  kinds: { database: { pattern: "db-*.dump" } }
`);
    try {
      const j = await run('--json');
      assert.equal(j.code, 1);
      const checks = (JSON.parse(j.out) as { checks: Array<{ check: string; status: string; target: string; value: string }> }).checks;
      const expiry = (t: string) => checks.find((c) => c.check === 'certificate expiry' && c.target === t);
      assert.equal(expiry('soon')?.status, 'warn');
      assert.match(expiry('soon')?.value ?? '', /^(9|10)\.\d days$/);
      assert.equal(expiry('fine')?.status, 'ok');
      assert.equal(checks.find((c) => c.check === 'backup directory')?.status, 'fail');
    } finally {
      configFile = saved;
    }
  } finally {
    await certs.close();
  }
});

test('retention: one row per cleanup/archive entry; kept is ok, past the weekly job plus a day warns, an entry it cannot check warns', async () => {
  const su = new pg.Client({ connectionString: pgs.url({ db: 'app' }) });
  await su.connect();
  try {
    await su.query(`
      CREATE TABLE check_logs (id int, created_at timestamptz);
      CREATE INDEX ON check_logs (created_at);
      INSERT INTO check_logs VALUES (1, now() - interval '95 days'), (2, now() - interval '1 day');
      CREATE TABLE check_conversations (id int, started_at timestamptz);
      INSERT INTO check_conversations VALUES (1, now() - interval '40 days');
      GRANT SELECT ON check_logs, check_conversations TO housekeeper;`);
  } finally {
    await su.end();
  }
  const saved = configFile;
  configFile = writeConfigFile(`
server: { scrape_timeout: 3s }
postgres:
  - { name: primary, url: "${pgs.url({ db: 'app', user: 'housekeeper' })}" }
actions:
  cleanup:
    chat_logs: { postgres: primary, table: check_logs, column: created_at, older_than: 90d }
    gone: { postgres: primary, table: no_such_table, column: created_at, older_than: 90d }
  archive:
    conversations: { postgres: primary, table: check_conversations, column: started_at, older_than: 30d, archive_table: check_conversations_archive }
`);
  try {
    const j = await run('--json');
    assert.ok(j.out.startsWith('{'), j.out + j.err);
    const checks = (JSON.parse(j.out) as { checks: Array<{ check: string; status: string; target: string; value: string; threshold: string }> }).checks;
    const row = (check: string) => checks.find((c) => c.check === check && c.target === 'primary');
    // 95 days against 90: 5 days past, within the 8-day grace.
    assert.equal(row('retention cleanup chat_logs (check_logs)')?.status, 'ok');
    assert.match(row('retention cleanup chat_logs (check_logs)')?.value ?? '', /^oldest 95\.\d d$/);
    assert.equal(row('retention cleanup chat_logs (check_logs)')?.threshold, '< 90.0 d + 8.0 d');
    // 40 days against 30: 10 days past, over the grace.
    assert.equal(row('retention archive conversations (check_conversations)')?.status, 'warn');
    assert.equal(row('retention cleanup gone (no_such_table)')?.status, 'warn');
    assert.match(row('retention cleanup gone (no_such_table)')?.value ?? '', /cannot be checked/);
    assert.equal(j.code, 1, 'a warning makes the check non-zero');
    assert.equal(checks.filter((c) => c.check.startsWith('retention ')).length, 3);
  } finally {
    configFile = saved;
  }
});

test('the vector index: check waits (up to --wait) for the background FAISS check and reports it', async () => {
  const { flatIndex, randomVectors, writeAtomically } = await import('./helpers/faiss.ts');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'hk-check-faiss-'));
  const good = join(dir, 'good.index');
  writeAtomically(good, flatIndex(randomVectors(300, 16, 3), 16).toBuffer());
  const broken = join(dir, 'broken.index');
  writeAtomically(broken, flatIndex(randomVectors(300, 16, 4), 16).toBuffer().subarray(0, 500));
  const saved = configFile;
  configFile = writeConfigFile(`
faiss:
  - { name: good, path: ${good} }
  - { name: broken, path: ${broken} }
`);
  try {
    // A generous --wait: the check runs in a child process, slow to start on a busy machine.
    const j = await run('--json', '--wait', '60s');
    assert.equal(j.code, 1);
    const checks = (JSON.parse(j.out) as { checks: Array<{ check: string; status: string; target: string; value: string }> }).checks;
    assert.equal(checks.find((c) => c.check === 'vector index loadable' && c.target === 'good')?.status, 'ok');
    assert.equal(checks.find((c) => c.check === 'vector index recall@10' && c.target === 'good')?.value, '1.000');
    assert.equal(checks.find((c) => c.check === 'vector index loadable' && c.target === 'broken')?.status, 'fail');
  } finally {
    configFile = saved;
  }
});

test('a backup kind with no housekeeper backup is reported at once, not waited for', { timeout: 60_000 }, async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { publishBackup } = await import('../src/backups/manifest.ts');
  const dir = mkdtempSync(join(tmpdir(), 'hk-check-backups-'));
  // documents: only another tool's backup; configuration: one of housekeeper's; database: none.
  writeFileSync(join(dir, 'docs-1.tar'), 'made by another tool');
  writeFileSync(join(dir, '.config-1.tar.partial'), 'made by housekeeper');
  await publishBackup(join(dir, '.config-1.tar.partial'), 'config-1.tar', {
    kind: 'configuration',
    format: 'tar',
    tool: { name: 'housekeeper', version: '0.1.0' },
    source: { type: 'file', path: '/srv/configuration' },
    createdAt: new Date(),
  });
  const saved = configFile;
  configFile = writeConfigFile(`
backups:
  directory: ${dir}
  kinds:
    database: { pattern: "db-*.dump" }
    document_store: { pattern: "docs-*.tar" }
    configuration: { pattern: "config-*.tar" }
`);
  try {
    // --wait 120s is longer than this test's timeout: the test passes only if check does not
    // wait for a verification that a kind without housekeeper backups never gets (it once
    // waited 2 minutes for it), while still waiting for the one that is coming.
    const j = await run('--json', '--wait', '120s');
    assert.equal(j.code, 1, j.out + j.err);
    const checks = (JSON.parse(j.out) as { checks: Array<{ check: string; status: string; target: string; value: string }> }).checks;
    const row = (check: string, target: string) => checks.find((c) => c.check === check && c.target === target);
    assert.deepEqual(row('last backup age', 'database'), { check: 'last backup age', target: 'database', status: 'fail', value: 'none', threshold: 'daily (< 26h)' });
    for (const kind of ['database', 'document_store']) {
      assert.equal(row('last backup verified', kind)?.status, 'skip', kind);
      assert.match(row('last backup verified', kind)?.value ?? '', /^no housekeeper backup/, kind);
    }
    assert.equal(row('last backup age', 'document_store')?.status, 'ok');
    // A housekeeper backup is still waited for (briefly) and its verdict reported.
    assert.deepEqual([row('last backup verified', 'configuration')?.status, row('last backup verified', 'configuration')?.value], ['ok', 'yes']);
  } finally {
    configFile = saved;
  }
});
