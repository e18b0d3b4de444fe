// The alert rules in alerts/: promtool accepts them and their unit tests pass; every metric
// they name exists (housekeeper declares it, or node_exporter exports it); every alert is
// documented, labelled and unit-tested firing, pending and quiet; and every remediation rule
// in rules/ that matches on alertname names an alert that exists.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { parse } from 'yaml';
import { collectors } from '../src/collectors/index.ts';
import { declareRunnerMetrics } from '../src/collectors/runner.ts';
import { declareServiceMetrics } from '../src/app.ts';
import { declareRemediationMetrics } from '../src/remediation/metrics.ts';
import { MetricFactory } from '../src/metrics/registry.ts';
import { actions } from '../src/actions/index.ts';
import { matches, parseMatchers } from '../src/remediation/matchers.ts';
import { loadRules } from '../src/remediation/rules.ts';
import { loadLezer, metricNames, metricNamesLezer } from './helpers/promql.ts';

const root = resolve(import.meta.dirname, '..');
const alertsDir = join(root, 'alerts');
const testsDir = join(alertsDir, 'tests');
const rulesDir = join(root, 'rules');
const PROMTOOL = process.env['HOUSEKEEPER_PROMTOOL_BIN'] ?? 'promtool';
const RUNBOOK = 'https://github.com/housekeeper/housekeeper/blob/main/docs/runbook.md';

// node_exporter's metrics the host alerts use (node_exporter is the standard for host
// metrics; housekeeper does not re-implement it: docs/architecture.md). Names as node_exporter 1.x
// exports them on Linux (cpu, meminfo, filesystem and netdev/netclass collectors). Add a
// name here only after checking node_exporter exports it.
const NODE_EXPORTER = new Set([
  'node_cpu_seconds_total',
  'node_memory_MemAvailable_bytes',
  'node_memory_MemTotal_bytes',
  'node_filesystem_avail_bytes',
  'node_filesystem_size_bytes',
  'node_filesystem_readonly',
  'node_network_receive_bytes_total',
  'node_network_transmit_bytes_total',
  'node_network_speed_bytes',
]);

// Alerts whose expression yields no `target` label, so their description cannot name one:
// absent() has no labels, and the remediation/webhook metrics are per rule, not per target.
const NO_TARGET = new Set([
  'HousekeeperAbsent',
  'HousekeeperRemediationFailed',
  'HousekeeperRemediationNotFixed',
  'HousekeeperRemediationCircuitOpen',
  'HousekeeperWebhookRejecting',
]);
// absent() yields 1, which says nothing a description should repeat.
const NO_VALUE = new Set(['HousekeeperAbsent']);

interface RuleEntry {
  file: string;
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const yamlFiles = (dir: string): string[] => {
  try {
    return readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
      .map((f) => join(dir, f));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
};

const alertFiles = yamlFiles(alertsDir);
const testFiles = yamlFiles(testsDir);

function loadRuleEntries(): RuleEntry[] {
  const out: RuleEntry[] = [];
  for (const file of alertFiles) {
    const doc = parse(readFileSync(file, 'utf8')) as { groups?: { name: string; rules?: Omit<RuleEntry, 'file'>[] }[] };
    for (const g of doc.groups ?? []) for (const r of g.rules ?? []) out.push({ ...r, file });
  }
  return out;
}
const entries = loadRuleEntries();
const alerts = entries.filter((e): e is RuleEntry & { alert: string } => typeof e.alert === 'string');
const alertNames = new Set(alerts.map((a) => a.alert));

/**
 * Every series name housekeeper exposes, from the same declarations the service registers
 * (as scripts/metrics-doc.ts reads them), in one registry as src/app.ts builds it.
 * Histograms and summaries expose _bucket/_sum/_count; counters keep their declared name.
 */
async function housekeeperMetricNames(): Promise<Set<string>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const own = new MetricFactory(registry, false);
  declareRunnerMetrics(own);
  declareServiceMetrics(own);
  declareRemediationMetrics(own);
  for (const c of collectors) c.metrics(new MetricFactory(registry, true));
  const names = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    const type = String(m.type);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(m.name + s);
    else names.add(m.name);
  }
  return names;
}

function run(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL, args, { cwd: root, encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw new Error(`cannot run ${PROMTOOL}: ${r.error.message} (Debian package prometheus; scripts/setup.sh installs it)`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const slug = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');

/** Alertnames a rule's matchers name but alerts/ does not define (Alertmanager matcher syntax). */
function unknownAlertnames(rulesYaml: string, defined: ReadonlySet<string>): string[] {
  const doc = (parse(rulesYaml) ?? {}) as { rules?: { name?: string; matchers?: string[] }[] };
  const problems: string[] = [];
  for (const rule of doc.rules ?? []) {
    for (const m of (rule.matchers ?? []).flatMap(parseMatchers)) {
      if (m.name !== 'alertname') continue;
      const where = `rule ${rule.name ?? '?'}: ${m.text}`;
      if (m.op === '=' && !defined.has(m.value)) problems.push(`${where}: no alert ${m.value} in alerts/`);
      if (m.op === '=~') {
        // A plain alternation of names: each must exist. Any other regex: it must match one.
        if (/^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$/.test(m.value)) {
          for (const name of m.value.split('|')) if (!defined.has(name)) problems.push(`${where}: no alert ${name} in alerts/`);
        } else if (![...defined].some((name) => m.regex?.test(name))) {
          problems.push(`${where}: matches no alert in alerts/`);
        }
      }
    }
  }
  return problems;
}

describe('alert rules (alerts/)', () => {
  test('there are alert files and unit-test files', () => {
    assert.ok(alertFiles.length > 0, 'alerts/*.yml');
    assert.ok(testFiles.length > 0, 'alerts/tests/*.yml');
    assert.ok(alerts.length > 0, 'alerts in alerts/*.yml');
  });

  test('promtool check rules accepts alerts/*.yml', () => {
    const { status, output } = run(['check', 'rules', ...alertFiles]);
    assert.equal(status, 0, `promtool check rules failed:\n${output}`);
  });

  test('promtool test rules passes alerts/tests/*.yml', () => {
    const { status, output } = run(['test', 'rules', ...testFiles]);
    assert.equal(status, 0, `promtool test rules failed:\n${output}`);
  });

  test('every metric an alert or recording rule names is produced by housekeeper or node_exporter', async () => {
    const produced = await housekeeperMetricNames();
    const recorded = new Set(entries.flatMap((e) => (e.record ? [e.record] : [])));
    // With the Prometheus project's grammar installed, the scan must agree with it.
    const lezer = await loadLezer();
    const missing: string[] = [];
    for (const e of entries) {
      const names = metricNames(e.expr);
      if (lezer) assert.deepEqual(names, metricNamesLezer(lezer, e.expr), `the scan and lezer-promql disagree on: ${e.expr}`);
      for (const name of names) {
        if (!produced.has(name) && !NODE_EXPORTER.has(name) && !recorded.has(name)) {
          missing.push(`${e.alert ?? e.record} (${e.file.slice(root.length + 1)}): ${name}`);
        }
      }
    }
    assert.deepEqual(missing, [], 'metrics that neither housekeeper nor node_exporter produces');
  });

  test('the unit tests feed only metrics that exist', async () => {
    const produced = await housekeeperMetricNames();
    const missing: string[] = [];
    for (const file of testFiles) {
      const doc = parse(readFileSync(file, 'utf8')) as { tests?: { input_series?: { series: string }[] }[] };
      for (const t of doc.tests ?? []) {
        for (const s of t.input_series ?? []) {
          const name = /^\s*([A-Za-z_:][A-Za-z0-9_:]*)/.exec(s.series)?.[1];
          if (name === undefined || (!produced.has(name) && !NODE_EXPORTER.has(name))) missing.push(`${file.slice(root.length + 1)}: ${s.series}`);
        }
      }
    }
    assert.deepEqual(missing, []);
  });

  test('every alert has a severity, a summary, a description and a runbook section', () => {
    const runbook = readFileSync(join(root, 'docs', 'runbook.md'), 'utf8');
    const anchors = new Set([...runbook.matchAll(/^#{2,3} (.+)$/gm)].map((m) => slug(m[1] as string)));
    const problems: string[] = [];
    for (const a of alerts) {
      const say = (what: string): void => {
        problems.push(`${a.alert}: ${what}`);
      };
      const sev = a.labels?.['severity'];
      if (sev !== 'warning' && sev !== 'critical') say(`severity ${String(sev)} (want warning or critical)`);
      const ann = a.annotations ?? {};
      for (const k of ['summary', 'description', 'runbook_url']) if (!ann[k]) say(`no ${k}`);
      if (ann['description'] && !NO_VALUE.has(a.alert) && !ann['description'].includes('$value')) say('description does not show {{ $value }}');
      if (ann['description'] && !NO_TARGET.has(a.alert) && !ann['description'].includes('$labels.target')) say('description does not name {{ $labels.target }}');
      const anchor = a.alert.toLowerCase();
      if (ann['runbook_url'] !== `${RUNBOOK}#${anchor}`) say(`runbook_url ${ann['runbook_url']} (want ${RUNBOOK}#${anchor})`);
      if (!anchors.has(anchor)) say(`docs/runbook.md has no section "### ${a.alert}"`);
    }
    assert.deepEqual(problems, []);
  });

  test('every runbook alert section names an alert that exists', () => {
    const runbook = readFileSync(join(root, 'docs', 'runbook.md'), 'utf8');
    const sections = [...runbook.matchAll(/^### ([A-Z][A-Za-z0-9]+)\s*$/gm)].map((m) => m[1] as string);
    assert.deepEqual(sections.filter((s) => !alertNames.has(s)), []);
  });

  test('a remediation label names a registered action, and a shipped rule runs that action for the alert', () => {
    const registered = new Set(actions.map((a) => a.name));
    const shipped = loadRules(rulesDir, actions).filter((r) => r.kind === 'alert');
    const problems: string[] = [];
    for (const a of alerts) {
      const action = a.labels?.['remediation'];
      if (action === undefined) continue;
      if (!registered.has(action)) problems.push(`${a.alert}: remediation ${action} is not an action`);
      // The alert's own labels decide; a matcher on a label its series carry (kind, target, …)
      // is one some series can meet.
      const own: Record<string, string> = { alertname: a.alert, ...(a.labels ?? {}) };
      const runs = shipped.filter((r) => r.matchers.every((m) => !(m.name in own) || matches(m, own))).map((r) => r.action.name);
      if (!runs.includes(action)) problems.push(`${a.alert}: no rule in rules/ runs ${action} for it (matched: ${runs.join(', ') || 'none'})`);
    }
    assert.deepEqual(problems, []);
  });

  test('every alert is unit-tested firing and quiet, and pending when it has a `for`', () => {
    const firing = new Set<string>();
    const quiet = new Set<string>();
    const pending = new Set<string>();
    for (const file of testFiles) {
      const doc = parse(readFileSync(file, 'utf8')) as {
        tests?: {
          alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[];
          promql_expr_test?: { expr: string; exp_samples?: unknown[] }[];
        }[];
      };
      for (const t of doc.tests ?? []) {
        for (const a of t.alert_rule_test ?? []) ((a.exp_alerts ?? []).length > 0 ? firing : quiet).add(a.alertname);
        for (const p of t.promql_expr_test ?? []) {
          const name = /alertname="([^"]+)"/.exec(p.expr)?.[1];
          if (name && /alertstate="pending"/.test(p.expr) && (p.exp_samples ?? []).length > 0) pending.add(name);
        }
      }
    }
    const problems: string[] = [];
    for (const name of alertNames) {
      if (!firing.has(name)) problems.push(`${name}: no test where it fires`);
      if (!quiet.has(name)) problems.push(`${name}: no test where it stays quiet`);
      const hasFor = alerts.some((a) => a.alert === name && a.for !== undefined && !/^0[smhdwy]?$/.test(a.for));
      if (hasFor && !pending.has(name)) problems.push(`${name}: no test showing it pending (ALERTS{alertstate="pending"})`);
    }
    assert.deepEqual(problems, []);
  });

});

describe('the metric-name scan (test/helpers/promql.ts)', () => {
  const cases: [string, string[]][] = [
    ['pg_up == 0', ['pg_up']],
    ['sum without (datname, state) (pg_stat_activity_count) / on (target) group_left () pg_settings_max_connections', ['pg_settings_max_connections', 'pg_stat_activity_count']],
    ['sum by (target) (rate(redis_keyspace_hits_total{target=~"a|b", db!="x"}[5m] offset 1h))', ['redis_keyspace_hits_total']],
    ['label_replace(up_metric, "target", "$1", "instance", "(.*)") > bool 0.9', ['up_metric']],
    ['count_values("version", build_info) and ignoring(version) topk(5, a) unless b or c', ['a', 'b', 'build_info', 'c']],
    ['{__name__="only_in_braces", job="x"} * 2', ['only_in_braces']],
    ['max_over_time(x[1h:5m]) > 1e3 and y > Inf  # a comment naming not_a_metric', ['x', 'y']],
    ['avg BY (cpu) (z) AND w', ['w', 'z']],
    ['time() - 8 * 86400 > absent(gone)', ['gone']],
    ['a:recorded:rate5m / scalar(sum(b))', ['a:recorded:rate5m', 'b']],
  ];
  for (const [expr, want] of cases) {
    test(expr, () => {
      assert.deepEqual(metricNames(expr), want);
    });
  }
  test('a regex on __name__ cannot be checked and is refused', () => {
    assert.throws(() => metricNames('{__name__=~"pg_.*"}'), /cannot be checked/);
  });
});

describe('remediation rules (rules/) name alerts that exist', () => {
  test('every alertname matcher in rules/*.yml names an alert in alerts/', () => {
    const problems = yamlFiles(rulesDir).flatMap((f) => unknownAlertnames(readFileSync(f, 'utf8'), alertNames).map((p) => `${f.slice(root.length + 1)}: ${p}`));
    assert.deepEqual(problems, []);
  });

  test('the check finds a rule naming a missing alert, exactly or in a regex', () => {
    const yaml = `
rules:
  - name: ok
    matchers: ['alertname="RedisMemoryHigh"', 'severity=~"warning|critical"']
    action: redis-flush
  - name: typo
    matchers: ['alertname="RedisMemoryHihg"']
    action: redis-flush
  - name: alternation
    matchers: ['alertname=~"RedisMemoryHigh|RedisGone"']
    action: redis-flush
  - name: regex
    matchers: ['alertname=~"Nothing.*"']
    action: redis-flush
  - name: negative
    matchers: ['alertname!="Whatever"']
    action: redis-flush
`;
    assert.deepEqual(unknownAlertnames(yaml, alertNames), [
      'rule typo: alertname="RedisMemoryHihg": no alert RedisMemoryHihg in alerts/',
      'rule alternation: alertname=~"RedisMemoryHigh|RedisGone": no alert RedisGone in alerts/',
      'rule regex: alertname=~"Nothing.*": matches no alert in alerts/',
    ]);
  });
});
