import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { metricsReference } from '../scripts/metrics-doc.ts';

const root = resolve(import.meta.dirname, '..');

test('the README\'s metrics reference matches the collectors\' declarations', () => {
  const readme = readFileSync(resolve(root, 'README.md'), 'utf8');
  const m = /<!-- metrics:begin -->\n([\s\S]*?)\n<!-- metrics:end -->/.exec(readme);
  assert.ok(m, 'README has the metrics markers');
  assert.equal(m[1], metricsReference(), 'run: bash scripts/node.sh scripts/metrics-doc.ts --write');
});
