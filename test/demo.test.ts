import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

// The README's main job, run for a few seconds: it must bring up the stack, see every target
// up through the service's own /metrics, print where to look, and clean up after itself.
test('npm run demo brings up the stack with every target up, then stops cleanly', () => {
  const root = resolve(import.meta.dirname, '..');
  const r = spawnSync('bash', [resolve(root, 'scripts/node.sh'), resolve(root, 'scripts/demo.ts'), '--duration', '3s', '--port', '0'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `demo failed:\n${r.stdout}\n${r.stderr}`);
  for (const t of ['pg_up{target="primary"} 1', 'pg_up{target="replica"} 1', 'pgbouncer_up{target="bouncer"} 1', 'redis_up{target="cache"} 1']) {
    assert.ok(r.stdout.includes(t), `demo output lacks ${t}`);
  }
  assert.match(r.stdout, /metrics {4}http:\/\/127\.0\.0\.1:\d+\/metrics/);
  assert.match(r.stdout, /every server it started is gone/);
});
