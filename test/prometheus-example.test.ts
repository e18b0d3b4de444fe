import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { startPostgres, startReplica, type PgServer } from './harness/postgres.ts';
import { startPrometheus, type PrometheusServer } from './harness/prometheus.ts';
import { startAlertmanager, type AlertmanagerServer } from './harness/alertmanager.ts';
import { startService, type Service } from './helpers/service.ts';
import { eventuallyWithin } from './helpers/wait.ts';

// docs/prometheus.example.yml, the prometheus.yml docs/wiring.md quotes, in a real Prometheus: housekeeper
// scraped through /probe for a primary, its replica and a target that is down, plus its own
// metrics through /metrics?collect=none, and the alerts sent to a real Alertmanager. Only the
// addresses, the intervals and the rule files' location differ from the file; node_exporter
// is not run here, so its job is left out.

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const examplePath = join(root, 'docs/prometheus.example.yml');
const example = readFileSync(examplePath, 'utf8');
const eventually = eventuallyWithin(60_000);

interface StaticConfig {
  targets: string[];
}
interface ScrapeConfig {
  job_name: string;
  scrape_timeout?: string;
  static_configs: StaticConfig[];
  relabel_configs?: Array<Record<string, unknown>>;
}
interface PromConfig {
  global?: unknown;
  rule_files?: string[];
  alerting: { alertmanagers: Array<{ static_configs: StaticConfig[] }> };
  scrape_configs: ScrapeConfig[];
}

/** The example with this machine's addresses; fails when the file no longer has what it replaces. */
function adapt(text: string, hk: string, am: string, probeTargets: string[]): string {
  assert.ok(text.includes('housekeeper.internal:9847') && text.includes('alertmanager.internal:9093'));
  const c = parse(text.replaceAll('housekeeper.internal:9847', hk).replaceAll('alertmanager.internal:9093', am)) as PromConfig;
  // The harness writes global (1 s intervals) and rule_files (its copies of alerts/*.yml).
  delete c.global;
  delete c.rule_files;
  const probe = c.scrape_configs.find((s) => s.job_name === 'housekeeper');
  assert.ok(probe, 'the example has the housekeeper job');
  delete probe.scrape_timeout;
  assert.equal(probe.static_configs.length, 1);
  probe.static_configs[0]!.targets = probeTargets;
  c.scrape_configs = c.scrape_configs.filter((s) => s.job_name !== 'node');
  return stringify(c);
}

let primary: PgServer;
let replica: PgServer;
let svc: Service;
let am: AlertmanagerServer;
let prom: PrometheusServer;

before(async () => {
  primary = await startPostgres();
  replica = await startReplica(primary);
  // A 2 s scrape interval: each probe's deadline is its timeout (2 s) less the offset.
  svc = await startService(`
server: { scrape_timeout_offset: 200ms }
postgres:
  - { name: primary, url: "${primary.url({ user: 'housekeeper' })}" }
  - { name: replica, url: "${replica.url({ user: 'housekeeper' })}" }
  - { name: down, url: "postgres://housekeeper:unused@127.0.0.1:1/postgres" }
`);
  am = await startAlertmanager({ webhookUrl: `${svc.url}/hooks/alertmanager` });
  prom = await startPrometheus({
    scrapeTargets: [],
    scrapeInterval: '2s',
    ruleFiles: [join(root, 'alerts/*.yml')],
    forOverride: { HousekeeperTargetDown: '1s' },
    extraConfig: adapt(example, new URL(svc.url).host, new URL(am.url).host, ['primary', 'replica', 'down']),
  });
});

after(async () => {
  await prom?.destroy();
  await am?.destroy();
  await svc?.close();
  await replica?.destroy();
  await primary?.destroy();
});

test('promtool check config accepts the example as shipped', () => {
  const r = spawnSync('promtool', ['check', 'config', examplePath], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS/);
});

test('docs/wiring.md quotes the example exactly', () => {
  const readme = readFileSync(join(root, 'docs', 'wiring.md'), 'utf8');
  const m = /<!-- prometheus\.example\.yml:begin -->\n```yaml\n([\s\S]*?)```\n<!-- prometheus\.example\.yml:end -->/.exec(readme);
  assert.ok(m, 'docs/wiring.md has the prometheus.example.yml block');
  assert.equal(m[1], example);
});

test('through /probe, every target is its own instance: count by (instance) (pg_up) is one series each', async () => {
  const counts = await eventually('pg_up from the three probes', async () => {
    const r = await prom.query('count by (instance) (pg_up{job="housekeeper"})');
    return r.length === 3 ? r : undefined;
  });
  assert.deepEqual(counts.map((s) => [s.metric['instance'], s.value[1]]).sort(), [['down', '1'], ['primary', '1'], ['replica', '1']]);
  // Each probe's series carry their own target, nobody else's.
  const up = await prom.query('pg_up');
  for (const s of up) assert.equal(s.metric['instance'], s.metric['target'], JSON.stringify(s.metric));
  const byInstance = Object.fromEntries(up.map((s) => [s.metric['instance'], s.value[1]]));
  assert.deepEqual(byInstance, { primary: '1', replica: '1', down: '0' }, svc.lines.filter((l) => l.includes('"level":40')).join('\n'));
  // A target that is down is a successful scrape saying so, never a failed one.
  // (The self-scrape is its own target: wait until Prometheus has scraped it once too.)
  const scrapes = await eventually('a scrape of every housekeeper target', async () => {
    const r = await prom.query('up{job="housekeeper"}');
    return r.length === 4 ? r : undefined;
  });
  assert.deepEqual(scrapes.map((s) => [s.metric['instance'], s.value[1]]).sort(), [['down', '1'], ['primary', '1'], ['replica', '1'], [new URL(svc.url).host, '1']].sort());
});

test('sum by (instance) (pg_stat_activity_count) keeps primary and replica apart', async () => {
  const sums = await eventually('connection counts of both', async () => {
    const r = await prom.query('sum by (instance) (pg_stat_activity_count)');
    return r.length === 2 ? r : undefined;
  });
  assert.deepEqual(sums.map((s) => s.metric['instance']).sort(), ['primary', 'replica']);
  // At one evaluation time: each instance's sum less its own target's sum is 0.
  const diff = await prom.query(
    'sum by (instance) (pg_stat_activity_count) - on (instance) label_replace(sum by (target) (pg_stat_activity_count), "instance", "$1", "target", "(.*)")',
  );
  assert.deepEqual(diff.map((s) => [s.metric['instance'], s.value[1]]).sort(), [['primary', '0'], ['replica', '0']]);
});

test('housekeeper\'s own metrics come once, from /metrics?collect=none, under job="housekeeper"', async () => {
  const build = await eventually('housekeeper_build_info', async () => {
    const r = await prom.query('housekeeper_build_info{job="housekeeper"}');
    return r.length > 0 ? r : undefined;
  });
  assert.equal(build.length, 1);
  assert.equal(build[0]!.metric['instance'], new URL(svc.url).host);
  assert.deepEqual(await prom.query(`{instance="${new URL(svc.url).host}", target!=""}`), [], 'no target series from the self-scrape');
  // Pending at most while the first self-scrape had not landed; gone after it.
  await eventually('HousekeeperAbsent cleared', async () => ((await prom.alerts()).some((a) => a.labels['alertname'] === 'HousekeeperAbsent') ? undefined : true));
});

test('the alerts reach Alertmanager: HousekeeperTargetDown for the target that is down', async () => {
  const alert = await eventually('HousekeeperTargetDown in Alertmanager', async () => {
    const all = await am.alerts();
    return all.find((a) => a.labels['alertname'] === 'HousekeeperTargetDown');
  });
  assert.equal(alert.labels['target'], 'down');
  assert.equal(alert.labels['instance'], 'down');
  assert.equal(alert.labels['job'], 'housekeeper');
  assert.ok(!(await am.alerts()).some((a) => a.labels['alertname'] === 'HousekeeperTargetDown' && a.labels['target'] !== 'down'));
});
