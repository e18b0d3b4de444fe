import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SELECTORS, exprsOf, isNodeMetric, rewriteExpr, SelectorError, vectorSelectors, withSelectors } from '../src/alerts/selectors.ts';

// The shipped alerts select housekeeper's series only (job="housekeeper"; node_exporter's
// job="node"), and `housekeeper alerts` re-targets them to another job. Parsing is by
// lezer-promql, so a selector inside a matrix, a subquery or absent() counts like any other.
// alerts/tests/selectors.test.yml shows with promtool that other jobs' series do not fire.

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const alertFiles = readdirSync(join(root, 'alerts'))
  .filter((f) => f.endsWith('.yml'))
  .map((f) => join(root, 'alerts', f));

/** Selectors that lack `want` (for a housekeeper metric) or `wantNode` (node_*), as "file: metric in expr". */
function unselected(text: string, file: string, want: string, wantNode: string): string[] {
  return exprsOf(text).flatMap((expr) =>
    vectorSelectors(expr)
      .filter((s) => !s.matchers.some((m) => m.text === (isNodeMetric(s.metric) ? wantNode : want)))
      .map((s) => `${file}: ${s.metric ?? '(no name)'} in ${expr.replace(/\s+/g, ' ')}`),
  );
}

test('every vector selector of every shipped alert carries the job selector', () => {
  assert.ok(alertFiles.length > 0);
  let selectors = 0;
  for (const file of alertFiles) {
    const text = readFileSync(file, 'utf8');
    assert.deepEqual(unselected(text, file, 'job="housekeeper"', 'job="node"'), []);
    selectors += exprsOf(text).reduce((n, e) => n + vectorSelectors(e).length, 0);
  }
  assert.ok(selectors > 59, `${selectors} selectors checked`);
});

test('the shipped files are what the rewrite makes of them (a new alert without the selector fails here)', () => {
  for (const file of alertFiles) {
    const text = readFileSync(file, 'utf8');
    assert.equal(withSelectors(text, DEFAULT_SELECTORS, file), text, `${file}: run withSelectors on it (src/alerts/selectors.ts)`);
  }
});

test('the check finds a selector without the job matcher, in a matrix, a subquery and absent()', () => {
  const text = 'groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: |\n          rate(a_total{job="housekeeper"}[5m]) > 0\n          and max_over_time(b{x="1"}[1h:1m]) > 0 or absent(c)\n';
  assert.deepEqual(
    unselected(text, 'f', 'job="housekeeper"', 'job="node"').map((s) => s.split(' in ')[0]),
    ['f: b', 'f: c'],
  );
});

test('rewriteExpr sets the selector on every selector, replacing a job matcher and keeping the others', () => {
  const s = { selector: 'job="hk",env="prod"', nodeSelector: 'job="nodes"' };
  assert.equal(
    rewriteExpr('sum without (x) (rate(a_total{job="housekeeper",x=~"y"}[5m])) / b offset 5m > on (target) c[10m:1m] @ 100', s),
    'sum without (x) (rate(a_total{job="hk",env="prod",x=~"y"}[5m])) / b{job="hk",env="prod"} offset 5m > on (target) c{job="hk",env="prod"}[10m:1m] @ 100',
  );
  assert.equal(rewriteExpr('node_load1{instance="a"} + absent({__name__="d"})', s), 'node_load1{job="nodes",instance="a"} + absent({__name__="d",job="hk",env="prod"})');
  // Idempotent, and braces around the selector are optional.
  const once = rewriteExpr('x > 1 unless y{job!="a"}', s);
  assert.equal(rewriteExpr(once, { ...s, selector: '{job="hk",env="prod"}' }), once);
  // Functions and strings are left alone.
  assert.equal(rewriteExpr('time() - 3600', s), 'time() - 3600');
  assert.equal(rewriteExpr('label_replace(z, "t", "$1", "instance", "(.*)")', s), 'label_replace(z{job="hk",env="prod"}, "t", "$1", "instance", "(.*)")');
});

test('a selector that is not label matchers, or a broken expression, is refused', () => {
  for (const bad of ['job=', 'sum(x)', 'job="a"} or vector(1) or x{', '']) {
    assert.throws(() => rewriteExpr('x', { selector: bad, nodeSelector: 'job="node"' }), SelectorError, bad);
  }
  assert.throws(() => rewriteExpr('x +', DEFAULT_SELECTORS), SelectorError);
});

test('withSelectors keeps comments and layout, and reads back as written', () => {
  const text = [
    '# top comment',
    'groups:',
    '  - name: g',
    '    rules:',
    '      # a comment',
    '      - alert: A',
    '        expr: a > 1 # trailing',
    '        for: 5m',
    '      - record: r',
    '        expr: |',
    '          sum without (x) (',
    '            b',
    '          )',
    '',
  ].join('\n');
  const out = withSelectors(text, { selector: 'job="hk"', nodeSelector: 'job="node"' });
  assert.equal(out, text.replace('a > 1', 'a{job="hk"} > 1').replace('            b\n', '            b{job="hk"}\n'));
  assert.throws(() => withSelectors('groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: >-\n          a\n          > 1\n', DEFAULT_SELECTORS), /literal block/);
});

function runCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', [join(root, 'bin/housekeeper'), 'alerts', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('housekeeper alerts --selector prints rules promtool accepts that select only that job', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hk-alerts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = runCli(['--selector', 'job="hk"', '--node-selector', 'job="nodes"']);
  assert.equal(r.status, 0, r.stderr);
  const rules = join(dir, 'rules.yml');
  writeFileSync(rules, r.stdout);
  const shipped = alertFiles.reduce((n, f) => n + exprsOf(readFileSync(f, 'utf8')).length, 0);
  assert.match(execFileSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' }), new RegExp(`SUCCESS: ${shipped} rules found`));
  assert.deepEqual(unselected(r.stdout, 'stdout', 'job="hk"', 'job="nodes"'), []);
  assert.doesNotMatch(r.stdout, /job="housekeeper"|job="node"/);
  // The same alert on the same values: job hk fires, job housekeeper no longer does.
  writeFileSync(
    join(dir, 'hk.test.yml'),
    `rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - { series: 'redis_memory_used_bytes{job="hk",target="a"}', values: '900x10' }
      - { series: 'redis_memory_max_bytes{job="hk",target="a"}', values: '1000x10' }
      - { series: 'redis_memory_used_bytes{job="housekeeper",target="b"}', values: '900x10' }
      - { series: 'redis_memory_max_bytes{job="housekeeper",target="b"}', values: '1000x10' }
    alert_rule_test:
      - eval_time: 3m
        alertname: RedisMemoryHigh
        exp_alerts:
          - exp_labels: { severity: warning, remediation: redis-flush, job: hk, target: a }
            exp_annotations:
              summary: Redis a uses over 75% of its maxmemory
              description: Redis a uses 90% of its maxmemory; the runbook keeps it under 75%.
              runbook_url: https://github.com/housekeeper/housekeeper/blob/main/docs/runbook.md#redismemoryhigh
`,
  );
  const unit = spawnSync('promtool', ['test', 'rules', join(dir, 'hk.test.yml')], { encoding: 'utf8' });
  assert.equal(unit.status, 0, unit.stdout + unit.stderr);

  // --out writes one file per shipped file, comments kept.
  const out = join(dir, 'out');
  assert.equal(runCli(['--selector', 'job="hk"', '--out', out]).status, 0);
  assert.deepEqual(readdirSync(out).sort(), alertFiles.map((f) => f.split('/').pop()).sort());
  const pg = readFileSync(join(out, 'postgres.yml'), 'utf8');
  assert.equal(pg, readFileSync(join(root, 'alerts/postgres.yml'), 'utf8').replaceAll('job="housekeeper"', 'job="hk"'));
});

test('housekeeper alerts refuses a bad selector with exit code 2', () => {
  const r = runCli(['--selector', 'job="a"} or vector(1) or x{']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /is not a list of label matchers/);
  assert.equal(r.stdout, '');
});
