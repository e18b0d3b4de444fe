import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { ConfigError, loadConfig } from '../src/config.ts';
import { configFrom, writeConfigFile } from './helpers/config.ts';
import { runbook } from '../src/runbook.ts';

const root = resolve(import.meta.dirname, '..');

function configError(yaml: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    configFrom(yaml, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('config was accepted');
}

test('a minimal config gets the documented defaults', () => {
  const c = configFrom('postgres:\n  - name: primary\n    url: postgres://u:p@127.0.0.1:5432/app\n');
  assert.equal(c.server.host, '127.0.0.1');
  assert.equal(c.server.port, 9847);
  assert.equal(c.server.scrapeTimeoutMs, 10_000);
  assert.equal(c.server.scrapeTimeoutOffsetMs, 500);
  assert.equal(c.collectors.postgres.longQueryThresholdMs, 5_000);
  assert.equal(c.collectors.postgres.topTables, 20);
  assert.deepEqual(c.postgres, [{ name: 'primary', url: 'postgres://u:p@127.0.0.1:5432/app' }]);
  assert.deepEqual(c.redis, []);
});

test('defaults that are runbook numbers are the runbook\'s', () => {
  const c = configFrom(
    'postgres: [{ name: p, url: "postgres://h/db" }]\nfaiss: [{ name: f, path: f.index }]\nelasticsearch: [{ name: e, url: "http://h:9200" }]\n',
  );
  assert.equal(c.collectors.postgres.longQueryThresholdMs, runbook.longQuerySeconds * 1000);
  assert.equal(c.faiss[0]?.recallFloor, runbook.faissRecallFloorDefault);
  assert.equal(c.elasticsearch[0]?.retentionMs, runbook.esRetentionSeconds * 1000);
});

test('remediation is on when its section is written; a section given in part takes the rest from the defaults', () => {
  assert.equal(configFrom('').remediation.enabled, false);
  assert.equal(configFrom('remediation: {}\n').remediation.enabled, true);
  assert.equal(configFrom('remediation: { enabled: false }\n').remediation.enabled, false);
  const r = configFrom('remediation: { budget: { max_actions: 5 }, circuit: { reset_after: 1h } }\n').remediation;
  assert.deepEqual([r.budget, r.circuit], [{ maxActions: 5, perMs: 3_600_000 }, { failures: 3, resetAfterMs: 3_600_000 }]);
  assert.deepEqual(configFrom('actions: { exec: { e: { argv: [x] } } }\n').actions.exec['e'], {
    argv: ['x'], timeoutMs: 300_000, envFromLabels: [], cwd: undefined, verifyArgv: undefined,
  });
});

test('an empty file is a valid config with no targets', () => {
  const c = configFrom('');
  assert.deepEqual([c.postgres, c.pgbouncer, c.redis], [[], [], []]);
});

test('durations are parsed in Prometheus notation', () => {
  const c = configFrom('server: { scrape_timeout: 1m30s }\ncollectors: { postgres: { long_query_threshold: 2500ms } }\n');
  assert.equal(c.server.scrapeTimeoutMs, 90_000);
  assert.equal(c.collectors.postgres.longQueryThresholdMs, 2_500);
  assert.match(configError('server: { scrape_timeout: soon }\n'), /server\.scrape_timeout \(line 1\): "soon" is not a duration/);
});

test('an unknown key is named with its line', () => {
  const msg = configError('server:\n  host: 127.0.0.1\n  prot: 80\n');
  assert.match(msg, /invalid config \/test\/housekeeper\.yml: server\.prot \(line 3\): unknown key "prot"/);
});

test('a wrong type names the field and line', () => {
  const msg = configError('redis:\n  - name: cache\n    url: redis://127.0.0.1:6379\n    cache_dbs: [zero]\n');
  assert.match(msg, /redis\[0\]\.cache_dbs\[0\] \(line 4\)/);
});

test('a YAML syntax error names the line', () => {
  assert.match(configError('server:\n  port: [1,\n'), /YAML syntax/);
});

test('a bad URL scheme is named without echoing the URL or its password', () => {
  const msg = configError('postgres:\n  - name: primary\n    url: mysql://root:hunter2@db/app\n');
  assert.match(msg, /postgres\[0\]\.url \(line 3\): URL scheme must be postgres: or postgresql:/);
  assert.doesNotMatch(msg, /hunter2/);
  const bad = configError('redis:\n  - name: cache\n    url: "not a url hunter2"\n');
  assert.match(bad, /redis\[0\]\.url \(line 3\): not a valid URL/);
  assert.doesNotMatch(bad, /hunter2/);
});

test('${VAR} takes secrets from the environment and a missing one is named', () => {
  const yaml = 'redis:\n  - name: cache\n    url: redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0\n';
  assert.equal(configFrom(yaml, { REDIS_PASSWORD: 'pw' }).redis[0]?.url, 'redis://:pw@127.0.0.1:6379/0');
  assert.match(configError(yaml), /redis\[0\]\.url \(line 3\): environment variable REDIS_PASSWORD is not set/);
});

test('url_file reads the URL from a file next to the config', () => {
  const secretFile = writeConfigFile('postgres://u:filepw@127.0.0.1:1/app\n');
  const c = configFrom(`postgres:\n  - name: primary\n    url_file: ${secretFile}\n`);
  assert.equal(c.postgres[0]?.url, 'postgres://u:filepw@127.0.0.1:1/app');
  assert.match(configError('postgres:\n  - name: p\n    url_file: /nonexistent/x\n'), /postgres\[0\]\.url_file \(line 3\): cannot read \/nonexistent\/x: ENOENT/);
  assert.match(configError('postgres:\n  - name: p\n'), /postgres\[0\] \(line 2\): give exactly one of url and url_file/);
});

test('duplicate target names are refused', () => {
  const msg = configError('redis:\n  - { name: a, url: "redis://h:1" }\n  - { name: a, url: "redis://h:2" }\n');
  assert.match(msg, /redis\[1\]\.name \(line 3\): duplicate target name "a"/);
});

test('a missing file is named', () => {
  assert.throws(() => loadConfig('/nonexistent/housekeeper.yml'), /invalid config \/nonexistent\/housekeeper\.yml: cannot read file/);
});

test('the service refuses to boot on a bad config: exit 2, file and field on stderr', () => {
  const file = writeConfigFile('server:\n  port: "eighty"\n');
  const r = spawnSync('bash', [resolve(root, 'scripts/node.sh'), resolve(root, 'src/main.ts')], {
    env: { ...process.env, HOUSEKEEPER_CONFIG: file },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, new RegExp(`invalid config ${file}: server\\.port \\(line 2\\)`));
});

test('the service refuses to boot without HOUSEKEEPER_CONFIG', () => {
  const env = { ...process.env };
  delete env['HOUSEKEEPER_CONFIG'];
  const r = spawnSync('bash', [resolve(root, 'scripts/node.sh'), resolve(root, 'src/main.ts')], { env, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /set HOUSEKEEPER_CONFIG/);
});

test('an unknown collector name stops the boot', () => {
  const file = writeConfigFile('collectors:\n  disabled: [postgress]\n');
  const r = spawnSync('bash', [resolve(root, 'scripts/node.sh'), resolve(root, 'src/main.ts')], {
    env: { ...process.env, HOUSEKEEPER_CONFIG: file },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /collectors\.disabled\[0\]: unknown collector "postgress"/);
});
