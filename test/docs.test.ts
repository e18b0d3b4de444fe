import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { metricsReference } from '../scripts/metrics-doc.ts';

const root = resolve(import.meta.dirname, '..');

test('docs/metrics.md matches the collectors\' declarations', () => {
  const doc = readFileSync(resolve(root, 'docs', 'metrics.md'), 'utf8');
  const m = /<!-- metrics:begin -->\n([\s\S]*?)\n<!-- metrics:end -->/.exec(doc);
  assert.ok(m, 'docs/metrics.md has the metrics markers');
  assert.equal(m[1], metricsReference(), 'run: bash scripts/node.sh scripts/metrics-doc.ts --write');
});
