import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Document, isSeq, parseDocument } from 'yaml';
import { DEFAULT_SELECTORS, SelectorError, parseSelector, withSelectors, type Selectors } from './selectors.ts';

// `housekeeper alerts`: the shipped rules with the job selectors of your Prometheus, as a
// mixin's `selector` config does. One combined rule file on stdout, or with --out one file
// per shipped file (comments kept) in a directory.

export const ALERTS_USAGE =
  'usage: housekeeper alerts [--selector \'job="housekeeper"\'] [--node-selector \'job="node"\'] [--out DIR] [FILE.yml ...]\n' +
  '       (default files: the shipped alerts/*.yml)';

/** The shipped rule files (alerts/*.yml next to src/ or dist/). */
export function shippedRuleFiles(): string[] {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'alerts');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .sort()
    .map((f) => join(dir, f));
}

/** Several rule files as one: their groups in order (group names are unique across files). */
export function combineRuleFiles(texts: readonly string[]): string {
  const combined = new Document({ groups: [] });
  const groups = combined.get('groups');
  for (const text of texts) {
    const g = parseDocument(text).get('groups');
    if (isSeq(groups) && isSeq(g)) groups.items.push(...g.items);
  }
  return combined.toString({ lineWidth: 0 });
}

/** Runs the command; returns the exit code (2 on bad arguments or a rule it cannot rewrite). */
export function alertsCommand(args: string[], out: (s: string) => void, err: (s: string) => void): number {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { selector: { type: 'string' }, 'node-selector': { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    err(`housekeeper alerts: ${(e as Error).message}\n${ALERTS_USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out(`${ALERTS_USAGE}\n`);
    return 0;
  }
  const selectors: Selectors = {
    selector: values.selector ?? DEFAULT_SELECTORS.selector,
    nodeSelector: values['node-selector'] ?? DEFAULT_SELECTORS.nodeSelector,
  };
  const files = positionals.length > 0 ? positionals : shippedRuleFiles();
  try {
    parseSelector(selectors.selector);
    parseSelector(selectors.nodeSelector);
    const rewritten = files.map((f) => ({ name: basename(f), text: withSelectors(readFileSync(f, 'utf8'), selectors, f) }));
    if (values.out !== undefined) {
      mkdirSync(values.out, { recursive: true });
      for (const r of rewritten) writeFileSync(join(values.out, r.name), r.text);
    } else {
      out(combineRuleFiles(rewritten.map((r) => r.text)));
    }
    return 0;
  } catch (e) {
    if (e instanceof SelectorError || (e as NodeJS.ErrnoException).code === 'ENOENT') {
      err(`housekeeper alerts: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}
