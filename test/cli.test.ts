import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { writeConfigFile } from './helpers/config.ts';

// bin/housekeeper as a person runs it: the version, and every bad command line or config
// answered in one line (plus the usage for a command line) with a non-zero exit, no stack.

const root = resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { version: string };

function housekeeper(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    const p = spawn(resolve(root, 'bin/housekeeper'), args, { env: { ...process.env, HOUSEKEEPER_CONFIG: '/nonexistent/housekeeper.yml', ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('close', (code) => res({ code, out, err }));
  });
}

/** No "    at fn (file:line)" frames, no thrown-object dumps. */
function assertNoStack(text: string): void {
  assert.doesNotMatch(text, /^\s+at /m, text);
  assert.doesNotMatch(text, /node:internal|Error \[ERR_|\{\n\s+code:/, text);
}

test('--version and -V print the version from package.json and exit 0', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await housekeeper([flag]);
    assert.deepEqual(r, { code: 0, out: `housekeeper ${pkg.version}\n`, err: '' }, flag);
  }
});

test('--help prints the usage and exits 0', async () => {
  const r = await housekeeper(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.out, /^usage: housekeeper check \[--json\] \[--wait DURATION\]/);
});

test('a bad command line: one line naming the problem, the usage, exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /^housekeeper: unknown option --bogus$/],
    [['check', '--frob'], /^housekeeper: unknown option --frob$/],
    [['frobnicate'], /^housekeeper: unknown command "frobnicate"$/],
    [['check', 'now'], /^housekeeper: unexpected argument "now"$/],
    [['check', '--wait'], /^housekeeper: Option '--wait <value>' argument missing$/],
    [['check', '--wait', '1.5h'], /^housekeeper: --wait: "1\.5h" is not a duration/],
    [['serve', '--json'], /^housekeeper: --json is an option of check$/],
  ];
  for (const [args, first] of cases) {
    const r = await housekeeper(args);
    const what = args.join(' ');
    assert.equal(r.code, 2, what);
    assert.equal(r.out, '', what);
    const [line, ...rest] = r.err.split('\n');
    assert.match(line ?? '', first, what);
    assert.match(rest.join('\n'), /^usage: housekeeper check/, what);
    assertNoStack(r.err);
  }
});

test('a bad or missing config: the file and field in one line, non-zero, for check and serve alike', async () => {
  const bad = writeConfigFile('redis:\n  - { name: cache }\n');
  const badYaml = writeConfigFile('server: [\n');
  for (const cmd of ['check', 'serve']) {
    const r = await housekeeper([cmd], { HOUSEKEEPER_CONFIG: bad });
    assert.equal(r.code, 2, cmd);
    assert.equal(r.err, `housekeeper: invalid config ${bad}: redis[0] (line 2): give exactly one of url and url_file\n`, cmd);
    const y = await housekeeper([cmd], { HOUSEKEEPER_CONFIG: badYaml });
    assert.equal(y.code, 2, cmd);
    assert.match(y.err, /^housekeeper: invalid config .*: YAML syntax: /, cmd);
    assertNoStack(y.err);
    const missing = await housekeeper([cmd]);
    assert.equal(missing.code, 2, cmd);
    assert.match(missing.err, /^housekeeper: invalid config \/nonexistent\/housekeeper\.yml: cannot read file/, cmd);
    assertNoStack(missing.err);
  }
  const { HOUSEKEEPER_CONFIG: _unset, ...env } = process.env;
  const unset = await new Promise<{ code: number | null; err: string }>((res) => {
    const p = spawn(resolve(root, 'bin/housekeeper'), ['check'], { env });
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('close', (code) => res({ code, err }));
  });
  assert.equal(unset.code, 2);
  assert.match(unset.err, /set HOUSEKEEPER_CONFIG to the path of the config file/);
});
