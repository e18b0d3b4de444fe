import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { dashboardsDir, render, stale } from '../dashboards/generate.ts';
import { dashboards } from '../dashboards/src/index.ts';
import { DAY, HOUR, runbook } from '../src/runbook.ts';
import { collectors } from '../src/collectors/index.ts';
import { declareRunnerMetrics } from '../src/collectors/runner.ts';
import { declareServiceMetrics } from '../src/app.ts';
import { MetricFactory, type Declared } from '../src/metrics/registry.ts';
import { declareRemediationMetrics } from '../src/remediation/metrics.ts';
import { startPrometheus, type PrometheusServer } from './harness/prometheus.ts';

// The generated dashboards: committed JSON current, every panel with a unit and $datasource,
// every dashboard with $datasource, $target, a stable uid and the remediation annotations,
// every query parsed by a real Prometheus 2.42, every metric one that housekeeper or
// node_exporter exports, and the colour steps the numbers the alerts fire at.

const root = resolve(import.meta.dirname, '..');

// ---------------------------------------------------------------------------------------
// The dashboards as Grafana would import them: the committed files.

interface Json {
  [k: string]: unknown;
}
interface Target {
  expr?: string;
  refId?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
  fieldConfig?: { defaults?: { unit?: string } };
}
interface Variable {
  name: string;
  type: string;
  query?: unknown;
  datasource?: { type?: string; uid?: string };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: Json[] };
}

const committed: Array<{ file: string; d: Dashboard }> = dashboards.map((s) => ({
  file: s.file,
  d: JSON.parse(readFileSync(resolve(dashboardsDir, s.file), 'utf8')) as Dashboard,
}));

/** Every panel, rows' children included, without the rows. */
function panelsOf(d: Dashboard): Panel[] {
  const out: Panel[] = [];
  const walk = (ps: Panel[]): void => {
    for (const p of ps) {
      if (p.type === 'row') walk(p.panels ?? []);
      else out.push(p);
    }
  };
  walk(d.panels);
  return out;
}

interface Query {
  where: string;
  expr: string;
}

/** Every PromQL text in a dashboard: panel targets, and the selectors in label_values() variables. */
function queriesOf(file: string, d: Dashboard): Query[] {
  const out: Query[] = [];
  for (const p of panelsOf(d)) {
    for (const t of p.targets ?? []) if (t.expr !== undefined) out.push({ where: `${file}: panel "${p.title}" ${t.refId ?? ''}`, expr: t.expr });
  }
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue;
    const m = /^label_values\((.*),\s*([a-zA-Z_]\w*)\)$/s.exec(String(v.query));
    assert.ok(m, `${file}: variable ${v.name}: label_values(selector, label), got ${String(v.query)}`);
    out.push({ where: `${file}: variable $${v.name}`, expr: m[1]! });
  }
  return out;
}

const allQueries: Query[] = committed.flatMap(({ file, d }) => queriesOf(file, d));

// Grafana's variables as Prometheus sees them after interpolation: the "All" regex for the
// dashboards' multi-value variables, and durations for Grafana's interval variables.
const SUBSTITUTE: Record<string, string> = {
  target: '.*',
  instance: '.*',
  rule: '.*',
  __rate_interval: '1m',
  __interval: '5m',
  __range: '1h',
};

function interpolate(expr: string): string {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    const value = SUBSTITUTE[name];
    if (value === undefined) throw new Error(`unknown dashboard variable ${whole} in: ${expr}`);
    return value;
  });
}

// ---------------------------------------------------------------------------------------
// Metric names

/** What housekeeper declares (the same declarations docs/metrics.md is made from). */
function declaredMetrics(): Map<string, Declared> {
  const own = new MetricFactory(new Registry(), false);
  declareRunnerMetrics(own);
  declareServiceMetrics(own);
  declareRemediationMetrics(own);
  const factories = [own];
  for (const c of collectors) {
    const f = new MetricFactory(new Registry(), true);
    c.metrics(f);
    factories.push(f);
  }
  const out = new Map<string, Declared>();
  for (const f of factories) {
    for (const d of f.declared) {
      if (d.type === 'histogram') {
        out.set(`${d.name}_bucket`, { ...d, labels: [...d.labels, 'le'] });
        out.set(`${d.name}_sum`, d);
        out.set(`${d.name}_count`, d);
      } else {
        out.set(d.name, d);
      }
    }
  }
  return out;
}

/**
 * node_exporter's names the overview's host panels use (docs/architecture.md: the standard, not
 * re-implemented), with the labels they are matched on. Kept explicit: a name here is one
 * node_exporter 1.x exports on Linux.
 */
const NODE_EXPORTER: Record<string, string[]> = {
  node_uname_info: ['instance', 'job', 'nodename', 'release', 'sysname', 'version', 'machine', 'domainname'],
  node_cpu_seconds_total: ['instance', 'job', 'cpu', 'mode'],
  node_memory_MemAvailable_bytes: ['instance', 'job'],
  node_memory_MemTotal_bytes: ['instance', 'job'],
  node_filesystem_avail_bytes: ['instance', 'job', 'device', 'fstype', 'mountpoint'],
  node_filesystem_size_bytes: ['instance', 'job', 'device', 'fstype', 'mountpoint'],
  node_filesystem_readonly: ['instance', 'job', 'device', 'fstype', 'mountpoint'],
  node_network_receive_bytes_total: ['instance', 'job', 'device'],
  node_network_transmit_bytes_total: ['instance', 'job', 'device'],
  node_network_speed_bytes: ['instance', 'job', 'device'],
};

/** Labels Prometheus adds to every scraped series. */
const SCRAPE_LABELS = ['job', 'instance'];

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan', 'atan2']);

/**
 * The metric names in a PromQL expression, each with the label names its own matchers use:
 * identifiers that are not functions, keywords, label names or durations, plus names a
 * `__name__=~"a|b"` matcher lists.
 */
function metricsIn(expr: string): Array<{ name: string; labels: string[] }> {
  const out: Array<{ name: string; labels: string[] }> = [];
  let text = expr.replace(/\$\{?\w+\}?/g, '1m');
  // Matchers first, where names and label names are still attached.
  text = text.replace(/([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}/g, (_whole, name: string | undefined, matchers: string) => {
    const labels: string[] = [];
    for (const m of matchers.matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      if (m[1] === '__name__') {
        assert.ok(m[2] === '=' || m[2] === '=~', `__name__ matcher ${m[0]}: only = and =~ can be checked`);
        assert.match(m[3]!, /^[\w:]+(\|[\w:]+)*$/, `__name__ matcher ${m[0]}: only a plain alternation can be checked`);
        for (const n of m[3]!.split('|')) out.push({ name: n, labels });
      } else {
        labels.push(m[1]!);
      }
    }
    if (name !== undefined && !KEYWORDS.has(name)) out.push({ name, labels });
    return ' ';
  });
  text = text
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  for (const m of text.matchAll(/(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(\s*\()?/g)) {
    if (m[2] !== undefined || KEYWORDS.has(m[1]!)) continue;
    out.push({ name: m[1]!, labels: [] });
  }
  return out;
}

// ---------------------------------------------------------------------------------------

test('the committed dashboards/*.json are what dashboards/generate.ts writes', () => {
  assert.deepEqual(stale(), [], 'run: bash scripts/node.sh dashboards/generate.ts');
  const generated = new Set(render().keys());
  const onDisk = readdirSync(dashboardsDir).filter((f) => f.endsWith('.json'));
  assert.deepEqual(onDisk.filter((f) => !generated.has(f)), [], 'JSON files in dashboards/ that no source generates');
  // Generation is deterministic: two runs give the same text.
  assert.deepEqual([...render()], [...render()]);
});

test('every dashboard has a stable uid, $datasource then $target, and the remediation annotations', () => {
  const uids = new Set<string>();
  for (const { file, d } of committed) {
    const source = dashboards.find((s) => s.file === file)!;
    assert.equal(d.uid, source.uid, `${file}: uid`);
    assert.equal(d.uid, `housekeeper-${file.replace(/\.json$/, '')}`, `${file}: uid follows the file name`);
    assert.ok(d.uid.length <= 40 && /^[a-z0-9-]+$/.test(d.uid), `${file}: uid ${d.uid} is a Grafana uid`);
    assert.ok(!uids.has(d.uid), `${file}: uid ${d.uid} is unique`);
    uids.add(d.uid);

    const [ds, target] = d.templating.list;
    assert.equal(ds?.name, 'datasource', `${file}: first variable is datasource`);
    assert.equal(ds?.type, 'datasource');
    assert.equal(ds?.query, 'prometheus', `${file}: $datasource lists Prometheus data sources`);
    assert.equal(target?.name, 'target', `${file}: second variable is target`);
    assert.equal(target?.type, 'query');
    assert.deepEqual(target?.datasource, { type: 'prometheus', uid: '${datasource}' }, `${file}: $target queries $datasource`);
    assert.match(String(target?.query), /^label_values\(.+, target\)$/, `${file}: $target lists target label values`);

    const remediations = d.annotations.list.find((a) => a['name'] === 'Remediations');
    assert.ok(remediations, `${file}: has the Remediations annotation`);
    assert.deepEqual(remediations['datasource'], { type: 'grafana', uid: '-- Grafana --' }, `${file}: from Grafana's own annotation store`);
    assert.deepEqual(remediations['target'], { type: 'tags', tags: ['housekeeper'], matchAny: false, limit: 100 }, `${file}: filtered by the housekeeper tag`);
    assert.equal(remediations['enable'], true);
  }
  assert.equal(uids.size, dashboards.length);
  assert.ok(uids.has('housekeeper-overview'));
});

test('panels fit Grafana\'s 24-column grid without overlapping', () => {
  for (const { file, d } of committed) {
    const boxes = d.panels.map((p) => ({ title: p.title, ...(p as Panel & { gridPos: { x: number; y: number; w: number; h: number } }).gridPos }));
    for (const [i, a] of boxes.entries()) {
      assert.ok(a.x >= 0 && a.w > 0 && a.h > 0 && a.x + a.w <= 24, `${file}: panel "${a.title}" fits in 24 columns`);
      for (const b of boxes.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        assert.ok(!overlap, `${file}: panels "${a.title}" and "${b.title}" overlap`);
      }
    }
  }
});

test('every panel has a unit, an id, and reads from $datasource', () => {
  for (const { file, d } of committed) {
    const panels = panelsOf(d);
    assert.ok(panels.length > 0, `${file}: has panels`);
    const ids = new Set<number>();
    for (const p of panels) {
      const where = `${file}: panel "${p.title}"`;
      const unit = p.fieldConfig?.defaults?.unit;
      assert.ok(typeof unit === 'string' && unit.length > 0, `${where}: has a unit`);
      assert.ok(typeof p.id === 'number' && !ids.has(p.id), `${where}: has its own id`);
      ids.add(p.id);
      if (p.type === 'annolist') continue; // Grafana's annotation store, no query
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `${where}: panel data source`);
      assert.ok((p.targets ?? []).length > 0, `${where}: has queries`);
      const refIds = new Set<string>();
      for (const t of p.targets ?? []) {
        assert.deepEqual(t.datasource, { type: 'prometheus', uid: '${datasource}' }, `${where}: query data source`);
        assert.ok(typeof t.expr === 'string' && t.expr.length > 0, `${where}: query has PromQL`);
        assert.ok(t.refId && !refIds.has(t.refId), `${where}: refIds are set and distinct`);
        refIds.add(t.refId);
      }
    }
  }
});

test('the metric name extraction finds names and skips functions, keywords, labels and durations', () => {
  const names = (e: string): string[] => metricsIn(e).map((m) => m.name).sort();
  assert.deepEqual(names('sum by (target, state) (rate(a_total{target=~"$target", x="y|z"}[$__rate_interval])) / on (target) group_left () b'), ['a_total', 'b']);
  assert.deepEqual(names('time() - max by (kind) (c) > 26 * 3600 or vector(0) offset 5m'), ['c']);
  assert.deepEqual(names('{__name__=~"pgbouncer_up|redis_up"}'), ['pgbouncer_up', 'redis_up']);
  assert.deepEqual(names('histogram_quantile(0.9, sum by (le) (rate(d_bucket[5m]))) and e == 1e3'), ['d_bucket', 'e']);
  assert.deepEqual(metricsIn('f{target=~".*", mode="idle"}'), [{ name: 'f', labels: ['target', 'mode'] }]);
});

test('every metric a dashboard uses is one housekeeper or node_exporter exports, matched on labels it has', () => {
  const declared = declaredMetrics();
  assert.ok(declared.has('pg_up') && declared.has('housekeeper_remediations_total') && declared.has('housekeeper_remediation_duration_seconds_bucket'));
  const problems: string[] = [];
  const used = new Set<string>();
  for (const q of allQueries) {
    for (const { name, labels } of metricsIn(q.expr)) {
      used.add(name);
      const own = declared.get(name)?.labels;
      const node = NODE_EXPORTER[name];
      if (own === undefined && node === undefined) {
        problems.push(`${q.where}: ${name} is neither declared by housekeeper nor in the node_exporter list`);
        continue;
      }
      const known = [...(own ?? node ?? []), ...SCRAPE_LABELS];
      for (const l of labels) if (!known.includes(l)) problems.push(`${q.where}: ${name} has no label ${l}`);
    }
  }
  assert.deepEqual(problems, []);
  // The allowlist holds node_exporter names only, and only ones in use (no stale entries).
  for (const n of Object.keys(NODE_EXPORTER)) {
    assert.match(n, /^node_/);
    assert.ok(used.has(n), `${n} is in the node_exporter list but no panel uses it`);
    assert.ok(!declared.has(n), `${n} is declared by housekeeper: docs/architecture.md says node_exporter provides it`);
  }
});

describe('every query is valid PromQL to a real Prometheus 2.42', () => {
  let prom: PrometheusServer;

  before(async () => {
    prom = await startPrometheus({ scrapeTargets: [], waitForTargets: false });
  });
  after(async () => {
    await prom?.destroy();
  });

  /** GET /api/v1/query as Grafana sends it: the HTTP status and Prometheus's errorType. */
  async function check(expr: string): Promise<{ status: number; errorType?: string; error?: string }> {
    const res = await fetch(`${prom.url}/api/v1/query?${new URLSearchParams({ query: expr })}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { status: string; errorType?: string; error?: string };
    return { status: res.status, ...(body.errorType !== undefined ? { errorType: body.errorType, error: body.error } : {}) };
  }

  test('the server is Prometheus 2.42 and rejects a bad query with 400 bad_data', async () => {
    const info = (await (await fetch(`${prom.url}/api/v1/status/buildinfo`)).json()) as { data: { version: string } };
    assert.match(info.data.version, /^2\.42\./);
    const bad = await check('sum(rate(pg_up[5m])');
    assert.equal(bad.status, 400);
    assert.equal(bad.errorType, 'bad_data');
    // A query Grafana would send unsubstituted is rejected too: interpolation matters.
    assert.equal((await check('rate(pg_up[$__rate_interval])')).errorType, 'bad_data');
  });

  test('every panel query and variable selector parses and evaluates', async () => {
    assert.ok(allQueries.length > 100, `found ${allQueries.length} queries`);
    const failures: string[] = [];
    for (const q of allQueries) {
      const r = await check(interpolate(q.expr));
      if (r.status !== 200 || r.errorType !== undefined) failures.push(`${q.where}: HTTP ${r.status} ${r.errorType ?? ''}: ${r.error ?? ''}\n  ${q.expr}`);
    }
    assert.deepEqual(failures, []);
  });
});

// ---------------------------------------------------------------------------------------
// Colours and alerts: the numbers in src/runbook.ts are the ones alerts/*.yml fires at.

interface AlertRule {
  alert?: string;
  expr?: string;
  labels?: Record<string, string>;
}

function alertRules(): AlertRule[] {
  const dir = resolve(root, 'alerts');
  const out: AlertRule[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.yml')).sort()) {
    const doc = parse(readFileSync(resolve(dir, f), 'utf8')) as { groups?: Array<{ rules?: AlertRule[] }> };
    for (const g of doc.groups ?? []) for (const r of g.rules ?? []) if (r.alert !== undefined) out.push(r);
  }
  return out;
}

/**
 * The numbers in an expression, products of literals evaluated (`0.75`, `30 * 86400`); not
 * durations (`[10m]`) or digits inside names. Whatever the form of the comparison
 * (`x > 8 * 86400`, `x < time() - 8 * 86400`), its number is among them.
 */
function numbersIn(expr: string): number[] {
  const out: number[] = [];
  const literal = String.raw`\d+(?:\.\d+)?(?:e[+-]?\d+)?`;
  const re = new RegExp(String.raw`(?<![\w.:])(${literal}(?:\s*\*\s*${literal})*)(?![\w.:])`, 'g');
  for (const m of expr.matchAll(re)) out.push(m[1]!.split('*').reduce((a, x) => a * Number(x.trim()), 1));
  return out;
}

test('the dashboards\' colour steps are the numbers the alerts fire at', () => {
  const rules = alertRules();
  const r = runbook;
  const expected: Array<[alert: string, severity: string, value: number]> = [
    ['PostgresConnectionsHigh', 'warning', r.connections.warn],
    ['PostgresLongRunningQueries', 'warning', r.longQuerySeconds],
    ['PostgresIdleInTransaction', 'warning', r.idleInTransactionSeconds],
    ['PostgresRetentionNotKept', 'warning', r.retentionGraceSeconds],
    ['PostgresDeadTuplesHigh', 'warning', r.deadTupleRatio],
    ['PostgresReplicationLagHigh', 'warning', r.replicationLagSeconds.warn],
    ['RedisMemoryHigh', 'warning', r.redisMemory.warn],
    ['RedisCacheHitRatioLow', 'warning', r.hitRatio.warn],
    ['RedisRestarted', 'warning', r.redisRestartedSeconds],
    ['RedisLastSaveTooOld', 'warning', r.redisLastSaveSeconds],
    ['HostCpuHigh', 'warning', r.cpu.warn],
    ['HostCpuHigh', 'critical', r.cpu.crit],
    ['HostMemoryHigh', 'warning', r.memory.warn],
    ['HostMemoryHigh', 'critical', r.memory.crit],
    ['HostDiskUsageHigh', 'warning', r.disk.warn],
    ['HostDiskUsageHigh', 'critical', r.disk.crit],
    ['HostNetworkUsageHigh', 'warning', r.network.warn],
    ['HostNetworkUsageHigh', 'critical', r.network.crit],
    ['CertificateExpiringSoon', 'warning', r.certDays.warn * DAY],
    ['CertificateExpiringSoon', 'critical', r.certDays.crit * DAY],
    ['BackupTooOld', 'warning', r.backupAgeSeconds.warn],
    ['BackupTooOld', 'critical', r.backupAgeSeconds.crit],
    ['BackupRestoreTestOverdue', 'warning', r.restoreTestAgeSeconds.warn],
    ['FaissIndexNotRetrained', 'warning', r.faissMaintenanceSeconds.retrain],
    ['FaissIndexNotRebuilt', 'warning', r.faissMaintenanceSeconds.rebuild],
    ['FaissVectorsMissing', 'warning', r.faissMissingRatio],
    ['ElasticsearchIndicesPastRetention', 'warning', r.esPastRetentionGraceSeconds],
    ['ElasticsearchSnapshotTooOld', 'warning', r.esSnapshotAgeSeconds.warn],
  ];
  const problems: string[] = [];
  for (const [alert, severity, value] of expected) {
    const rule = rules.find((x) => x.alert === alert && x.labels?.['severity'] === severity);
    if (!rule?.expr) {
      problems.push(`${alert} (${severity}): no such alert in alerts/*.yml`);
      continue;
    }
    const numbers = numbersIn(rule.expr);
    if (!numbers.some((n) => Math.abs(n - value) < 1e-9)) problems.push(`${alert} (${severity}) has the numbers ${numbers.join(', ')}; src/runbook.ts says ${value}`);
  }
  // The hit ratio the dashboards show is over the alert's window.
  const hit = rules.find((x) => x.alert === 'RedisCacheHitRatioLow');
  if (!hit?.expr?.includes(`[${r.hitRatioWindow}]`)) problems.push(`RedisCacheHitRatioLow does not use the ${r.hitRatioWindow} window of the dashboards`);
  assert.deepEqual(problems, []);
  assert.equal(HOUR * 24, DAY);
});
