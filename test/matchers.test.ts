import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { matchesAll, parseMatchers } from '../src/remediation/matchers.ts';
import { makeTempDir, runTool } from './harness/proc.ts';

// Every row is checked twice: against housekeeper's parser and against Alertmanager itself
// (Debian's 0.25 amtool, `config routes test` with a route whose `matchers` holds the entry),
// so the expectations are Alertmanager's, not a reading of its source.

type Labels = Record<string, string>;
interface Row {
  /** One `matchers` entry, as written in a rule (and in an Alertmanager route). */
  entry: string;
  /** Label sets that must match, and ones that must not; or 'error' when the entry is refused. */
  match?: Labels[];
  miss?: Labels[];
  error?: true;
}

const ROWS: Row[] = [
  // Parsing: quotes, whitespace, escapes, unquoted values.
  { entry: 'a="x"', match: [{ a: 'x' }], miss: [{ a: 'xx' }, {}] },
  { entry: 'a=x', match: [{ a: 'x' }], miss: [{ a: '"x"' }] },
  { entry: '  a  !=  "x"  ', match: [{ a: 'y' }, {}], miss: [{ a: 'x' }] },
  { entry: 'a=x y', match: [{ a: 'x y' }], miss: [{ a: 'x' }] },
  { entry: 'a=" x "', match: [{ a: ' x ' }], miss: [{ a: 'x' }] },
  { entry: 'a=', match: [{}, { a: '' }], miss: [{ a: 'x' }] },
  { entry: 'a=""', match: [{}], miss: [{ a: 'x' }] },
  { entry: 'a!=""', match: [{ a: 'x' }], miss: [{}] },
  { entry: 'a="x\\"y"', match: [{ a: 'x"y' }], miss: [{ a: 'x\\"y' }] },
  { entry: 'a="x\\\\y"', match: [{ a: 'x\\y' }], miss: [{ a: 'x\\\\y' }] },
  { entry: 'a="x\\yz"', match: [{ a: 'x\\yz' }], miss: [{ a: 'xyz' }] },
  { entry: 'a="x\\ny"', match: [{ a: 'x\ny' }], miss: [{ a: 'x\\ny' }] },
  { entry: 'a=x\\', match: [{ a: 'x\\' }] },
  { entry: 'a="x,y"', match: [{ a: 'x,y' }], miss: [{ a: 'x' }] },
  { entry: 'a=="x"', error: true },
  { entry: 'a="x', error: true },
  { entry: 'a=x"', error: true },
  { entry: 'a="x"y"', error: true },
  { entry: 'a="x\\"', error: true },
  { entry: '1a="x"', error: true },
  { entry: 'a-b="x"', error: true },
  { entry: 'a:b="x"', match: [{ 'a:b': 'x' }], miss: [{ 'a:b': 'y' }] },
  { entry: 'a', error: true },
  { entry: 'a~="x"', error: true },
  // Lists in one entry, as an Alertmanager route's `matchers` lines allow.
  { entry: 'a="x", b="y"', match: [{ a: 'x', b: 'y' }], miss: [{ a: 'x' }, { b: 'y' }] },
  { entry: '{a="x",b=~"y|z"}', match: [{ a: 'x', b: 'z' }], miss: [{ a: 'x', b: 'w' }] },
  { entry: '{a="x", }', match: [{ a: 'x' }], miss: [{ a: 'y' }] },
  { entry: 'a="x",,b="y"', error: true },
  { entry: ' {a="x"}', error: true },
  { entry: '{}', match: [{}, { a: 'x' }] },
  // Regexes: RE2 syntax, anchored at both ends.
  { entry: 'a=~"\\d+"', match: [{ a: '12' }], miss: [{ a: 'x1' }, { a: '١٢' }] },
  { entry: 'a=~"x|y"', match: [{ a: 'x' }, { a: 'y' }], miss: [{ a: 'xy' }, { a: 'ax' }] },
  { entry: 'a=~"(?i)warn"', match: [{ a: 'WARN' }, { a: 'warn' }], miss: [{ a: 'warning' }] },
  { entry: 'a=~"[[:digit:]]+"', match: [{ a: '42' }], miss: [{ a: 'd' }, { a: ':' }] },
  { entry: 'a=~"\\pL+"', match: [{ a: 'héllo' }, { a: 'pL' }], miss: [{ a: 'h1' }, { a: '' }] },
  { entry: 'a=~"\\p{Greek}+"', match: [{ a: 'αβ' }], miss: [{ a: 'ab' }] },
  { entry: 'a=~"\\Qa.b\\E"', match: [{ a: 'a.b' }], miss: [{ a: 'axb' }] },
  { entry: 'a=~"\\x{41}"', match: [{ a: 'A' }], miss: [{ a: 'x' }] },
  { entry: 'a=~".+"', match: [{ a: 'x' }], miss: [{ a: 'x\ny' }, {}] },
  { entry: 'a=~"x\\z"', match: [{ a: 'x' }], miss: [{ a: 'x\n' }] },
  { entry: 'a=~"(?s).+"', match: [{ a: 'x\ny' }] },
  { entry: 'a=~".*"', match: [{}, { a: 'x' }] },
  { entry: 'a!~""', match: [{ a: 'x' }], miss: [{}] },
  { entry: 'a!~"x|y"', match: [{ a: 'z' }, {}], miss: [{ a: 'x' }] },
  { entry: 'a=~"(?P<n>x)y"', match: [{ a: 'xy' }] },
  // Alertmanager anchors by concatenation, so an unbalanced pattern changes what is anchored.
  { entry: 'a=~"x)|(y"', match: [{ a: 'x' }, { a: 'xz' }, { a: 'zy' }], miss: [{ a: 'z' }, { a: 'yz' }] },
  { entry: 'a=~"é"', match: [{ a: 'é' }], miss: [{ a: 'e' }] },
  { entry: 'a=~"[^a]"', match: [{ a: '\n' }, { a: '€' }], miss: [{ a: 'a' }] },
  { entry: 'a=~"(x)\\1"', error: true },
  { entry: 'a=~"(?=x)x"', error: true },
  { entry: 'a=~"(?<n>x)"', error: true },
  { entry: 'a=~"x{1001}"', error: true },
  { entry: 'a=~"("', error: true },
];

/** A label as amtool takes it on the command line: a quoted matcher value. */
const labelArg = (k: string, v: string): string => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

let dir: string | undefined;
async function alertmanagerRoutes(entry: string): Promise<string> {
  dir ??= makeTempDir('am-matchers-', undefined);
  const file = path.join(dir, `am-${Math.random().toString(36).slice(2)}.yml`);
  const config = {
    route: { receiver: 'miss', routes: [{ receiver: 'hit', matchers: [entry] }] },
    receivers: [{ name: 'miss' }, { name: 'hit' }],
  };
  await writeFile(file, stringify(config));
  return file;
}

/** Alertmanager's answer: whether labels reach the route, or 'error' when it refuses the config. */
async function alertmanagerSays(file: string, labels: Labels): Promise<boolean> {
  // A label the rows never use keeps the argument list non-empty for amtool.
  const args = ['config', 'routes', 'test', `--config.file=${file}`, 'zz_test="1"', ...Object.entries(labels).map(([k, v]) => labelArg(k, v))];
  const out = await runTool('/usr/bin/amtool', args, { asOwner: undefined, timeoutMs: 20_000 });
  const receiver = out.split('\n').filter((l) => l !== '' && !l.startsWith('Warning:')).join(',');
  assert.ok(receiver === 'hit' || receiver === 'miss', `amtool said ${JSON.stringify(out)}`);
  return receiver === 'hit';
}

async function alertmanagerRefuses(file: string): Promise<boolean> {
  try {
    await runTool('/usr/bin/amtool', ['check-config', file], { asOwner: undefined, timeoutMs: 20_000 });
    return false;
  } catch {
    return true;
  }
}

// amtool calls are short and independent: a few at a time.
describe('matchers as Alertmanager 0.25 reads them', { concurrency: 4 }, () => {
  for (const row of ROWS) {
    test(`matcher ${JSON.stringify(row.entry)}`, async () => {
      const file = await alertmanagerRoutes(row.entry);
      assert.equal(await alertmanagerRefuses(file), row.error === true, 'Alertmanager refuses the entry');
      if (row.error) {
        assert.throws(() => parseMatchers(row.entry), Error, 'housekeeper refuses the entry');
        return;
      }
      const ms = parseMatchers(row.entry);
      for (const [labels, want] of [...(row.match ?? []).map((l) => [l, true] as const), ...(row.miss ?? []).map((l) => [l, false] as const)]) {
        const what = `${JSON.stringify(labels)} ${want ? 'matches' : 'does not match'}`;
        assert.equal(await alertmanagerSays(file, labels), want, `Alertmanager: ${what}`);
        assert.equal(matchesAll(ms, { zz_test: '1', ...labels }), want, `housekeeper: ${what}`);
      }
    });
  }
});

test('a regex that backtracking engines take exponential time on is matched in linear time', () => {
  const [m] = parseMatchers('a=~"(x+x+)+y"');
  assert.ok(m);
  assert.equal(matchesAll([m], { a: 'x'.repeat(5_000) }), false);
});
