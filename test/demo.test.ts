import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { until as waitUntil } from './helpers/wait.ts';

// The README's main job, run for a short while: it must bring up the whole loop (the stack,
// housekeeper, the real Prometheus scraping it with alerts/ loaded, the real Alertmanager
// pointed at its webhook), print where to look, and clean up after itself. While it runs,
// this test checks the pieces through their own APIs; then --duration ends it.

const root = resolve(import.meta.dirname, '..');
/** Bounds every wait below (the demo's start included); generous for a loaded machine. */
const BOUND_MS = 150_000;

function field(out: string, re: RegExp, what: string): string {
  const m = re.exec(out);
  assert.ok(m?.[1], `demo output lacks ${what}:\n${out}`);
  return m[1];
}

async function json<T>(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  const r = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: r.status, body: (await r.json()) as T };
}

/** Every wait shares the deadline `end`; an error (a server still starting) is "not yet". */
function until<T>(what: string, fn: () => Promise<T | undefined>, end: number): Promise<T> {
  return waitUntil(what, fn, { timeoutMs: Math.max(0, end - Date.now()), intervalMs: 500, onError: 'retry' });
}

test('npm run demo brings up the stack, Prometheus and Alertmanager around housekeeper, then stops cleanly', async () => {
  const end = Date.now() + BOUND_MS;
  const child = spawn('bash', [resolve(root, 'scripts/node.sh'), resolve(root, 'scripts/demo.ts'), '--duration', '20s', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const killer = setTimeout(() => child.kill('SIGTERM'), BOUND_MS);
  try {
    // The banner is printed once everything is up.
    const banner = await Promise.race([
      until('the demo banner', async () => (stdout.includes('Ctrl-C stops everything') ? 'up' : undefined), end),
      exited.then((code) => `exited (${code})`),
    ]);
    assert.equal(banner, 'up', `demo ${banner} before it was up:\n${stdout}\n${stderr}`);

    for (const t of [
      'pg_up{target="primary"} 1',
      'pg_up{target="replica"} 1',
      'pgbouncer_up{target="bouncer"} 1',
      'redis_up{target="cache"} 1',
      'elasticsearch_cluster_health_up{target="logs"} 1',
      'prometheus sees housekeeper: up{job="housekeeper"} 1',
    ]) {
      assert.ok(stdout.includes(t), `demo output lacks ${t}:\n${stdout}`);
    }
    assert.match(stdout, /Elasticsearch stand-in/i, 'the stand-in is labelled as one');
    const metrics = field(stdout, /housekeeper metrics +(http:\/\/127\.0\.0\.1:\d+)\/metrics/, 'the metrics URL');
    const prom = field(stdout, /prometheus +(http:\/\/127\.0\.0\.1:\d+)/, 'the Prometheus URL');
    const am = field(stdout, /alertmanager +(http:\/\/127\.0\.0\.1:\d+)/, 'the Alertmanager URL');
    const token = field(stdout, /Authorization: Bearer ([0-9a-f]{32,})'/, 'the webhook token');
    assert.match(stdout, /redis-benchmark -p \d+/, 'how to fill Redis');
    assert.match(stdout, /psql .* -U chatbot app -c 'SELECT pg_sleep\(\d+\)'/, 'how to run a long query');

    // Prometheus scrapes housekeeper, and every shipped alert file loaded without error.
    const up = await until('up{job="housekeeper"} == 1 in Prometheus', async () => {
      const r = await json<{ data: { result: Array<{ value: [number, string] }> } }>(`${prom}/api/v1/query?query=${encodeURIComponent('up{job="housekeeper"} == 1')}`);
      return r.body.data.result.length === 1 ? r.body.data.result[0] : undefined;
    }, end);
    assert.equal(up.value[1], '1');
    const rules = await json<{ data: { groups: Array<{ file: string; rules: Array<{ name: string; health: string; lastError?: string }> }> } }>(`${prom}/api/v1/rules`);
    const groups = rules.body.data.groups;
    for (const f of ['redis', 'postgres', 'housekeeper', 'faiss', 'backups', 'elasticsearch']) {
      assert.ok(groups.some((g) => g.file.endsWith(`${f}.yml`)), `Prometheus loaded alerts/${f}.yml`);
    }
    for (const g of groups) for (const r of g.rules) assert.notEqual(r.health, 'err', `${r.name}: ${r.lastError ?? ''}`);
    // Its Alertmanager is the demo's, and active.
    const ams = await until('the Alertmanager active in Prometheus', async () => {
      const r = await json<{ data: { activeAlertmanagers: Array<{ url: string }> } }>(`${prom}/api/v1/alertmanagers`);
      return r.body.data.activeAlertmanagers.length > 0 ? r.body.data.activeAlertmanagers : undefined;
    }, end);
    assert.ok(ams.some((a) => a.url.startsWith(am)), JSON.stringify(ams));

    // Alertmanager is up and routes to housekeeper's webhook with the bearer token.
    const status = await json<{ config: { original: string } }>(`${am}/api/v2/status`);
    assert.equal(status.status, 200);
    assert.ok(status.body.config.original.includes(`${metrics}/hooks/alertmanager`), 'routes to the webhook');
    assert.match(status.body.config.original, /authorization:\s+type: Bearer/);

    // housekeeper: remediation on, its log protected by the token.
    assert.equal((await fetch(`${metrics}/api/remediations`, { signal: AbortSignal.timeout(10_000) })).status, 401);
    const log = await json<{ items: unknown[] }>(`${metrics}/api/remediations`, { authorization: `Bearer ${token}` });
    assert.equal(log.status, 200);
    assert.ok(Array.isArray(log.body.items));
    // The FAISS index built from the demo's embeddings loads and matches its table.
    const faiss = await until('the FAISS index checked', async () => {
      const body = await (await fetch(`${metrics}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
      return /^faiss_index_loadable\{target="docs"\} 1$/m.test(body) && /^faiss_index_source_gap\{target="docs"\} /m.test(body) ? body : undefined;
    }, end);
    assert.match(faiss, /^faiss_index_source_gap\{target="docs"\} 0$/m);
    assert.match(faiss, /^faiss_index_vectors\{target="docs"\} 2000$/m);

    // --duration ends it: exit 0, everything it started gone.
    const code = await exited;
    assert.equal(code, 0, `demo failed:\n${stdout}\n${stderr}`);
    assert.match(stdout, /every server it started is gone/);
    await assert.rejects(fetch(`${prom}/-/ready`, { signal: AbortSignal.timeout(5_000) }), 'Prometheus stopped');
    await assert.rejects(fetch(`${am}/-/ready`, { signal: AbortSignal.timeout(5_000) }), 'Alertmanager stopped');
    await assert.rejects(fetch(`${metrics}/healthz`, { signal: AbortSignal.timeout(5_000) }), 'housekeeper stopped');
  } finally {
    clearTimeout(killer);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  }
});
