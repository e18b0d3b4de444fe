import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRedis, type RedisServer } from './harness/redis.ts';
import { freePort } from './harness/ports.ts';
import { flatIndex, randomVectors, writeAtomically } from './helpers/faiss.ts';
import { writeConfigFile } from './helpers/config.ts';
import { value } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

// `npm start` runs the JavaScript build (dist/), not the TypeScript the other tests run:
// prove the build serves metrics, including the FAISS check's child process, which is
// forked from a path that differs between the two.

const root = resolve(import.meta.dirname, '..');
let redis: RedisServer;
let child: ChildProcess;
let url: string;

before(async () => {
  redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'hk-start-'));
  const indexPath = join(dir, 'docs.index');
  writeAtomically(indexPath, flatIndex(randomVectors(200, 16, 1), 16).toBuffer());
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const config = writeConfigFile(`
server: { port: ${port} }
redis: [{ name: cache, url: "${redis.url(0)}" }]
faiss: [{ name: docs, path: ${indexPath}, check_interval: 1h }]
`);
  child = spawn('bash', [resolve(root, 'scripts/start.sh')], { env: { ...process.env, HOUSEKEEPER_CONFIG: config }, stdio: ['ignore', 'ignore', 'inherit'] });
});

after(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await redis?.destroy();
});

test('npm start (the dist/ build) serves metrics, and its FAISS check runs', async () => {
  // Errors are "not yet": the build runs first, then the server starts.
  const body = await until('the FAISS check in /metrics of the build', async () => {
    const b = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    return value(b, 'faiss_index_loadable', { target: 'docs' }) === 1 ? b : undefined;
  }, { tries: 300, intervalMs: 200, onError: 'retry' });
  assert.equal(value(body, 'redis_up', { target: 'cache' }), 1);
  assert.equal(value(body, 'faiss_index_loadable', { target: 'docs' }), 1, 'the check child was forked from the build');
  assert.equal(value(body, 'faiss_index_vectors', { target: 'docs' }), 200);
  const cmdline = (await import('node:fs')).readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
  assert.match(cmdline, /dist\/src\/main\.js/);
});
