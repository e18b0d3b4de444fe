// Writes dashboards/*.json from the TypeScript in dashboards/src (the JSON is output, never
// edited by hand): `bash scripts/node.sh dashboards/generate.ts`. With --check it writes
// nothing and exits 1 when a committed file differs (test/dashboards.test.ts does the same).
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { dashboards } from './src/index.ts';

export const dashboardsDir = import.meta.dirname;

/** Objects with their keys sorted, recursively: the files do not churn when the SDK reorders fields. */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

/** Every dashboard as the text of its committed file: file name → pretty-printed JSON. */
export function render(): Map<string, string> {
  const out = new Map<string, string>();
  for (const d of dashboards) out.set(d.file, `${JSON.stringify(sortKeys(d.build()), null, 2)}\n`);
  return out;
}

/** Files whose committed text differs from what the sources generate now. */
export function stale(): string[] {
  const bad: string[] = [];
  for (const [file, text] of render()) {
    let committed: string | undefined;
    try {
      committed = readFileSync(resolve(dashboardsDir, file), 'utf8');
    } catch {
      committed = undefined;
    }
    if (committed !== text) bad.push(file);
  }
  return bad;
}

if (import.meta.main) {
  if (process.argv.includes('--check')) {
    const bad = stale();
    if (bad.length > 0) {
      process.stderr.write(`stale: ${bad.join(', ')}; run: bash scripts/node.sh dashboards/generate.ts\n`);
      process.exit(1);
    }
  } else {
    for (const [file, text] of render()) writeFileSync(resolve(dashboardsDir, file), text);
    process.stdout.write(`wrote ${dashboards.length} dashboards to ${dashboardsDir}\n`);
  }
}
