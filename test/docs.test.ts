import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { actionsReference } from '../scripts/actions-doc.ts';
import { configReference } from '../scripts/config-doc.ts';
import { readBlock } from '../scripts/doc-block.ts';
import { metricsReference } from '../scripts/metrics-doc.ts';

const root = resolve(import.meta.dirname, '..');

test('docs/metrics.md matches the collectors\' declarations', () => {
  const block = readBlock(resolve(root, 'docs', 'metrics.md'), 'metrics');
  assert.ok(block !== undefined, 'docs/metrics.md has the metrics markers');
  assert.equal(block, metricsReference(), 'run: bash scripts/node.sh scripts/metrics-doc.ts --write');
});

test('docs/configuration.md\'s option table matches the config schemas', () => {
  const block = readBlock(resolve(root, 'docs', 'configuration.md'), 'options');
  assert.ok(block !== undefined, 'docs/configuration.md has the options markers');
  assert.equal(block, configReference(), 'run: bash scripts/node.sh scripts/config-doc.ts --write');
});

test('docs/actions.md matches the actions\' declarations', () => {
  const doc = readFileSync(resolve(root, 'docs', 'actions.md'), 'utf8');
  assert.equal(doc, actionsReference(), 'run: bash scripts/node.sh scripts/actions-doc.ts --write');
});

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes. */
const anchor = (heading: string): string =>
  heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');

test('every relative link in the README and docs/ names an existing file and heading', () => {
  const pages = ['README.md', ...readdirSync(resolve(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(resolve(root, page), 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const [, href] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(href ?? '')) continue;
      const [file = '', hash] = (href ?? '').split('#');
      const target = file === '' ? resolve(root, page) : resolve(root, dirname(page), file);
      if (!existsSync(target)) { broken.push(`${page}: ${href} (no such file)`); continue; }
      if (hash === undefined || !target.endsWith('.md')) continue;
      const headings = [...readFileSync(target, 'utf8').replace(/```[\s\S]*?```/g, '').matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1] ?? ''));
      if (!headings.includes(hash)) broken.push(`${page}: ${href} (no such heading)`);
    }
  }
  assert.deepEqual(broken, []);
});
