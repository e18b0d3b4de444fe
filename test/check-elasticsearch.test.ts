import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { startElasticsearchMock, type ElasticsearchMock, type MockSnapshot } from './harness/elasticsearch.ts';
import { freePort } from './harness/ports.ts';
import { writeConfigFile } from './helpers/config.ts';
import { runbook } from '../src/runbook.ts';
import type { CheckResult } from '../src/check/checks.ts';

// `housekeeper check`'s Elasticsearch rows, through the CLI as a person runs it, against the
// harness's Elasticsearch stand-in (no Elasticsearch can run here; test/harness/elasticsearch.ts
// answers with the documented shapes). The configs hold only Elasticsearch, so the exit code
// is decided by these rows alone.

const root = resolve(import.meta.dirname, '..');
const DAY = 86_400_000;
const HOUR = 3_600_000;
const now = Date.now();
/** Bounds one `check` run; a run that does not end by then is killed and the test fails. */
const RUN_LIMIT_MS = 90_000;

let es: ElasticsearchMock;

before(async () => {
  es = await startElasticsearchMock({
    indices: [
      { name: 'logs-new', createdMs: now - 2 * DAY, storeBytes: 1000 },
      { name: 'logs-week', createdMs: now - 7 * DAY, storeBytes: 2000 },
      // Older than any retention here, but matches no configured pattern: never counted.
      { name: 'other-ancient', createdMs: now - 400 * DAY, storeBytes: 3000 },
    ],
  });
});
after(async () => {
  await es?.close();
});

interface Run {
  code: number | null;
  out: string;
  err: string;
}

function run(configFile: string, ...args: string[]): Promise<Run> {
  return new Promise((res, rej) => {
    const p = spawn(resolve(root, 'bin/housekeeper'), ['check', ...args], { env: { ...process.env, HOUSEKEEPER_CONFIG: configFile } });
    let out = '';
    let err = '';
    const guard = setTimeout(() => {
      if (p.pid !== undefined) process.kill(p.pid, 'SIGKILL');
      rej(new Error(`housekeeper check did not end within ${RUN_LIMIT_MS} ms\n${out}${err}`));
    }, RUN_LIMIT_MS);
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('close', (code) => {
      clearTimeout(guard);
      res({ code, out, err });
    });
  });
}

async function runJson(configFile: string): Promise<{ code: number | null; ok: boolean; checks: CheckResult[]; err: string }> {
  const r = await run(configFile, '--json');
  const parsed = JSON.parse(r.out) as { ok: boolean; checks: CheckResult[] };
  return { code: r.code, ok: parsed.ok, checks: parsed.checks, err: r.err };
}

const row = (checks: CheckResult[], check: string, target: string): CheckResult | undefined => checks.find((c) => c.check === check && c.target === target);

/** A config with one target `logs` on the stand-in, plus any extra YAML list items. */
function esConfig(extra = '', opts: { scrapeTimeout?: string; patterns?: boolean } = {}): string {
  return writeConfigFile(`
server: { scrape_timeout: ${opts.scrapeTimeout ?? '3s'} }
elasticsearch:
  - name: logs
    url: ${es.url}
${opts.patterns === false ? '' : "    index_patterns: ['logs-*']\n"}${extra}`);
}

test('a green cluster: ok rows in the table and --json, exit 0', async () => {
  const config = esConfig();
  const before = es.requests.length;
  const r = await run(config);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^OK\s+elasticsearch reachable\s+logs\s+up\s+up$/m);
  assert.match(r.out, /^OK\s+elasticsearch health\s+logs\s+green\s+green$/m);
  assert.match(r.out, /^OK\s+indices past retention\s+logs\s+0\s+none older than 30 days$/m);
  assert.match(r.out, /^all 3 checks green$/m);
  const asked = es.requests.slice(before).map((q) => q.path);
  assert.ok(asked.includes('/_cluster/health') && asked.includes('/_cat/indices/logs-*'), `the stand-in was asked: ${asked.join(', ')}`);

  const j = await runJson(config);
  assert.equal(j.code, 0);
  assert.equal(j.ok, true);
  assert.deepEqual(j.checks, [
    { check: 'elasticsearch reachable', target: 'logs', status: 'ok', value: 'up', threshold: 'up' },
    { check: 'elasticsearch health', target: 'logs', status: 'ok', value: 'green', threshold: 'green' },
    { check: 'indices past retention', target: 'logs', status: 'ok', value: '0', threshold: 'none older than 30 days' },
  ]);
});

test('a yellow cluster warns and a red one fails: first in the table, in --json, exit 1', async () => {
  const config = esConfig();
  try {
    for (const [color, status, summary] of [
      ['yellow', 'warn', '0 failing, 1 warning, 2 ok'],
      ['red', 'fail', '1 failing, 0 warning, 2 ok'],
    ] as const) {
      es.state.health = color;
      es.state.unassignedShards = color === 'yellow' ? 4 : 9;
      const r = await run(config);
      assert.equal(r.code, 1, `${color}: ${r.out}${r.err}`);
      const lines = r.out.split('\n');
      assert.match(lines[1] ?? '', new RegExp(`^${status.toUpperCase()}\\s+elasticsearch health\\s+logs\\s+${color}\\s+green$`), color);
      assert.match(r.out, new RegExp(`^${summary}$`, 'm'), color);
      const j = await runJson(config);
      assert.equal(j.code, 1, color);
      assert.equal(j.ok, false, color);
      assert.deepEqual(row(j.checks, 'elasticsearch health', 'logs'), { check: 'elasticsearch health', target: 'logs', status, value: color, threshold: 'green' });
      assert.equal(row(j.checks, 'elasticsearch reachable', 'logs')?.status, 'ok', `${color}: the cluster answered`);
    }
  } finally {
    es.state.health = 'green';
    es.state.unassignedShards = 0;
  }
});

test('indices past the retention warn with their count, against each target\'s own retention', async () => {
  // The same cluster twice: `logs` keeps the runbook's 30 days, `short` keeps 5.
  const config = esConfig(`  - name: short
    url: ${es.url}
    index_patterns: ['logs-*']
    retention: 5d
`);
  let j = await runJson(config);
  assert.equal(j.code, 1);
  assert.equal(j.ok, false);
  assert.deepEqual(row(j.checks, 'indices past retention', 'logs'), { check: 'indices past retention', target: 'logs', status: 'ok', value: '0', threshold: 'none older than 30 days' });
  assert.deepEqual(row(j.checks, 'indices past retention', 'short'), { check: 'indices past retention', target: 'short', status: 'warn', value: '1', threshold: 'none older than 5 days' });

  es.state.indices.push({ name: 'logs-stale', createdMs: now - 45 * DAY, storeBytes: 500 });
  try {
    const r = await run(config);
    assert.equal(r.code, 1);
    assert.match(r.out, /^WARN\s+indices past retention\s+logs\s+1\s+none older than 30 days$/m);
    assert.match(r.out, /^WARN\s+indices past retention\s+short\s+2\s+none older than 5 days$/m);
    j = await runJson(config);
    assert.equal(row(j.checks, 'indices past retention', 'logs')?.status, 'warn');
    assert.equal(row(j.checks, 'indices past retention', 'logs')?.value, '1');
    assert.equal(row(j.checks, 'indices past retention', 'short')?.value, '2');
    assert.equal(row(j.checks, 'elasticsearch health', 'logs')?.status, 'ok', 'retention does not touch health');
  } finally {
    es.state.indices = es.state.indices.filter((i) => i.name !== 'logs-stale');
  }
});

test('no index patterns: no retention row claims indices were checked', async () => {
  const before = es.requests.length;
  const j = await runJson(esConfig('', { patterns: false }));
  assert.equal(j.code, 0);
  assert.deepEqual(
    j.checks.map((c) => [c.check, c.target, c.status]),
    [
      ['elasticsearch reachable', 'logs', 'ok'],
      ['elasticsearch health', 'logs', 'ok'],
    ],
  );
  assert.ok(!es.requests.slice(before).some((q) => q.path.startsWith('/_cat/indices')), 'no index was looked at');
});

test('nothing listening: a fail row naming the target, the other target still reported, exit 1', async () => {
  const port = await freePort();
  const config = esConfig(`  - name: gone
    url: http://127.0.0.1:${port}
    index_patterns: ['logs-*']
`);
  const r = await run(config);
  assert.equal(r.code, 1, r.out + r.err);
  assert.doesNotMatch(r.err, /Error|\n\s+at /, 'no crash, no stack trace');
  const lines = r.out.split('\n');
  assert.match(lines[1] ?? '', /^FAIL\s+elasticsearch reachable\s+gone\s+down\s+up$/);
  assert.match(r.out, /^FAIL\s+collector\s+elasticsearch\/gone\s+failed: GET \/_cluster\/health: ConnectionError: .*ECONNREFUSED.*\s+succeeds$/m);
  assert.match(r.out, /^OK\s+elasticsearch health\s+logs\s+green\s+green$/m);
  assert.match(r.out, /^2 failing, 0 warning, 3 ok$/m);

  const j = await runJson(config);
  assert.equal(j.code, 1);
  assert.equal(j.ok, false);
  assert.deepEqual(row(j.checks, 'elasticsearch reachable', 'gone'), { check: 'elasticsearch reachable', target: 'gone', status: 'fail', value: 'down', threshold: 'up' });
  assert.equal(row(j.checks, 'collector', 'elasticsearch/gone')?.status, 'fail');
  // A cluster that did not answer has no health or retention verdict, not a stale or made-up one.
  assert.equal(j.checks.filter((c) => c.target === 'gone').length, 1);
  assert.equal(row(j.checks, 'elasticsearch reachable', 'logs')?.status, 'ok');
  assert.equal(row(j.checks, 'indices past retention', 'logs')?.status, 'ok');
});

test('an error answer (503) and a hung server are down too, within the scrape deadline', async () => {
  es.state.fail = { status: 503, type: 'master_not_discovered_exception', reason: null };
  try {
    const j = await runJson(esConfig());
    assert.equal(j.code, 1);
    assert.deepEqual(row(j.checks, 'elasticsearch reachable', 'logs'), { check: 'elasticsearch reachable', target: 'logs', status: 'fail', value: 'down', threshold: 'up' });
    assert.equal(row(j.checks, 'elasticsearch health', 'logs'), undefined);
  } finally {
    es.state.fail = undefined;
  }

  const hung = await startElasticsearchMock({ hang: true });
  try {
    const config = writeConfigFile(`
server: { scrape_timeout: 1s }
elasticsearch:
  - { name: hung, url: ${hung.url}, index_patterns: ['logs-*'] }
`);
    const j = await runJson(config);
    assert.equal(j.code, 1);
    assert.equal(j.err, '');
    assert.deepEqual(row(j.checks, 'elasticsearch reachable', 'hung'), { check: 'elasticsearch reachable', target: 'hung', status: 'fail', value: 'down', threshold: 'up' });
    assert.equal(row(j.checks, 'collector', 'elasticsearch/hung')?.status, 'fail');
    assert.ok(hung.requests.some((q) => q.path === '/_cluster/health'), 'the hung server was asked');
  } finally {
    await hung.close();
  }
});

// ---------------------------------------------------------------------------------------
// Snapshot age: the latest SUCCESS or PARTIAL snapshot of the target's snapshot_repository,
// against ElasticsearchSnapshotTooOld's 26 h (warning only; none at all warns too).

const SNAPSHOT_ROW = 'elasticsearch snapshot age';

/** A finished snapshot that started `agoMs` before now. */
function snap(name: string, state: 'SUCCESS' | 'PARTIAL' | 'FAILED', agoMs: number): MockSnapshot {
  const startMs = Date.now() - agoMs;
  return { name, state, startMs, endMs: startMs + 60_000, shards: { total: 10, failed: state === 'SUCCESS' ? 0 : 3, successful: state === 'SUCCESS' ? 10 : 7 } };
}

/** The hours in an age value such as "3.5h". */
function hours(value: string | undefined): number {
  const m = /^(\d+\.\d)h$/.exec(value ?? '');
  assert.ok(m, `an age in hours, got ${value}`);
  return Number(m[1]);
}

test('the snapshot age row has a warn level only, as the alert behind it', () => {
  // The row reads src/runbook.ts, which test/dashboards.test.ts holds to alerts/*.yml.
  assert.deepEqual(Object.keys(runbook.esSnapshotAgeSeconds), ['warn']);
  const doc = parse(readFileSync(resolve(root, 'alerts/elasticsearch.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; labels?: Record<string, string> }> }> };
  const severities = doc.groups.flatMap((g) => g.rules).filter((r) => r.alert === 'ElasticsearchSnapshotTooOld').map((r) => r.labels?.['severity']);
  // A critical level added to the alert needs a fail level in the check (and runbook.ts).
  assert.deepEqual(severities, ['warning']);
});

test('a recent successful snapshot: an ok snapshot row with the latest success\'s age, exit 0', async () => {
  es.state.repositories = {
    nightly: [
      snap('nightly-old', 'SUCCESS', 50 * HOUR),
      snap('nightly-ok', 'SUCCESS', 3.5 * HOUR),
      // Newer, but failed: not the one the age is taken from.
      snap('nightly-failed', 'FAILED', 1 * HOUR),
    ],
  };
  try {
    const config = esConfig('    snapshot_repository: nightly\n');
    const before = es.requests.length;
    const r = await run(config);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^OK\s+elasticsearch snapshot age\s+logs\s+\d+\.\dh\s+daily \(< 26h\), repository nightly$/m);
    assert.match(r.out, /^all 4 checks green$/m);
    assert.ok(es.requests.slice(before).some((q) => q.path === '/_snapshot/nightly/_all'), 'the repository was asked');

    const j = await runJson(config);
    assert.equal(j.code, 0);
    assert.equal(j.ok, true);
    const got = row(j.checks, SNAPSHOT_ROW, 'logs');
    assert.equal(got?.status, 'ok');
    assert.equal(got?.threshold, 'daily (< 26h), repository nightly');
    // At least the successful one's 3.5 h (the failed one is 1 h old); time only adds to it.
    assert.ok(hours(got?.value) >= 3.5, `age ${got?.value}`);
    assert.equal(j.checks.filter((c) => c.check === SNAPSHOT_ROW).length, 1);
  } finally {
    es.state.repositories = {};
  }
});

test('an old snapshot warns (exit 1); a newer PARTIAL one counts as a success again', async () => {
  es.state.repositories = {
    nightly: [
      snap('nightly-old', 'SUCCESS', 30 * HOUR),
      // Running since an hour ago: not a success yet.
      { name: 'nightly-running', state: 'IN_PROGRESS', startMs: Date.now() - HOUR },
    ],
  };
  try {
    const config = esConfig('    snapshot_repository: nightly\n');
    const r = await run(config);
    assert.equal(r.code, 1, r.out + r.err);
    const lines = r.out.split('\n');
    assert.match(lines[1] ?? '', /^WARN\s+elasticsearch snapshot age\s+logs\s+\d+\.\dh\s+daily \(< 26h\), repository nightly$/);
    assert.match(r.out, /^0 failing, 1 warning, 3 ok$/m);

    let j = await runJson(config);
    assert.equal(j.code, 1);
    assert.equal(j.ok, false);
    const got = row(j.checks, SNAPSHOT_ROW, 'logs');
    assert.equal(got?.status, 'warn');
    assert.ok(hours(got?.value) >= 30, `age ${got?.value}`);
    assert.equal(row(j.checks, 'elasticsearch health', 'logs')?.status, 'ok', 'snapshots do not touch health');

    es.state.repositories['nightly']?.push(snap('nightly-partial', 'PARTIAL', 5 * HOUR));
    j = await runJson(config);
    assert.equal(j.code, 0);
    assert.equal(row(j.checks, SNAPSHOT_ROW, 'logs')?.status, 'ok');
    assert.ok(hours(row(j.checks, SNAPSHOT_ROW, 'logs')?.value) >= 5);
  } finally {
    es.state.repositories = {};
  }
});

test('no successful snapshot (only FAILED, or none): warn, as the alert does, exit 1', async () => {
  es.state.repositories = {
    broken: [snap('broken-1', 'FAILED', 2 * HOUR), snap('broken-2', 'FAILED', 26 * HOUR)],
    fresh: [],
  };
  try {
    // `logs` snapshots to a repository of failures, `empty` to one never used.
    const config = esConfig(`    snapshot_repository: broken
  - name: empty
    url: ${es.url}
    snapshot_repository: fresh
`);
    const r = await run(config);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.out, /^WARN\s+elasticsearch snapshot age\s+logs\s+none successful\s+daily \(< 26h\), repository broken$/m);
    assert.match(r.out, /^WARN\s+elasticsearch snapshot age\s+empty\s+none successful\s+daily \(< 26h\), repository fresh$/m);
    assert.match(r.out, /^0 failing, 2 warning, 5 ok$/m);

    const j = await runJson(config);
    assert.equal(j.code, 1);
    assert.equal(j.ok, false);
    assert.deepEqual(row(j.checks, SNAPSHOT_ROW, 'logs'), { check: SNAPSHOT_ROW, target: 'logs', status: 'warn', value: 'none successful', threshold: 'daily (< 26h), repository broken' });
    assert.deepEqual(row(j.checks, SNAPSHOT_ROW, 'empty'), { check: SNAPSHOT_ROW, target: 'empty', status: 'warn', value: 'none successful', threshold: 'daily (< 26h), repository fresh' });
    assert.equal(row(j.checks, 'elasticsearch reachable', 'empty')?.status, 'ok', 'an empty repository is not an unreachable cluster');
  } finally {
    es.state.repositories = {};
  }
});

test('no snapshot repository configured: no snapshot row and no snapshot request', async () => {
  // The cluster has an old repository; the target does not name it.
  es.state.repositories = { nightly: [snap('nightly-old', 'SUCCESS', 30 * HOUR)] };
  try {
    const before = es.requests.length;
    const j = await runJson(esConfig());
    assert.equal(j.code, 0);
    assert.deepEqual(
      j.checks.map((c) => [c.check, c.target, c.status]),
      [
        ['elasticsearch reachable', 'logs', 'ok'],
        ['elasticsearch health', 'logs', 'ok'],
        ['indices past retention', 'logs', 'ok'],
      ],
    );
    assert.ok(!es.requests.slice(before).some((q) => q.path.startsWith('/_snapshot')), 'no repository was looked at');
  } finally {
    es.state.repositories = {};
  }
});

test('a snapshot repository the cluster does not have: the collector row says so, not just "down"', async () => {
  es.state.repositories = { nightly: [snap('nightly-1', 'SUCCESS', 2 * HOUR)] };
  try {
    const j = await runJson(esConfig('    snapshot_repository: nigthly\n'));
    assert.equal(j.code, 1);
    assert.equal(row(j.checks, 'elasticsearch reachable', 'logs')?.status, 'fail');
    const c = row(j.checks, 'collector', 'elasticsearch/logs');
    assert.equal(c?.status, 'fail');
    assert.equal(c?.value, 'failed: GET /_snapshot/nigthly/_all: HTTP 404 repository_missing_exception: [nigthly] missing');
  } finally {
    es.state.repositories = {};
  }
});
