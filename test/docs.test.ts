import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { actionsReference } from '../scripts/actions-doc.ts';
import { metricsReference } from '../scripts/metrics-doc.ts';

const root = resolve(import.meta.dirname, '..');

test('docs/metrics.md matches the collectors\' declarations', () => {
  const doc = readFileSync(resolve(root, 'docs', 'metrics.md'), 'utf8');
  const m = /<!-- metrics:begin -->\n([\s\S]*?)\n<!-- metrics:end -->/.exec(doc);
  assert.ok(m, 'docs/metrics.md has the metrics markers');
  assert.equal(m[1], metricsReference(), 'run: bash scripts/node.sh scripts/metrics-doc.ts --write');
});

test('docs/actions.md matches the actions\' declarations', () => {
  const doc = readFileSync(resolve(root, 'docs', 'actions.md'), 'utf8');
  assert.equal(doc, actionsReference(), 'run: bash scripts/node.sh scripts/actions-doc.ts --write');
});
