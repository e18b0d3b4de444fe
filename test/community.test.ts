import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startPrometheus, type PrometheusServer } from './harness/prometheus.ts';
import { startStack, type Stack } from './harness/stack.ts';
import { startAnchors, type Anchors } from './helpers/anchors.ts';
import { startService, type Service } from './helpers/service.ts';
import { eventuallyWithin } from './helpers/wait.ts';
import { EVAL_LAG_MS, evaluate, forJob, gapReport, loadExpressions, normalise, startLoad, tally, type Load } from './community/compare.ts';

// Community expressions (test/community/expressions.yml: the postgres and redis mixins,
// grafana.com dashboards 9628 and 763, awesome-prometheus-alerts, grafana/jsonnet-libs) against
// housekeeper and the anchor exporters side by side: real Postgres primary + streaming
// replica, PgBouncer and Redis under a light load, housekeeper (job "housekeeper") and
// postgres_exporter (one per server) and redis_exporter (job
// "anchor"; no PgBouncer anchor can run here, see test/helpers/anchors.ts) scraped every
// second by one real Prometheus. Every expression is evaluated once
// per job; housekeeper must answer at least as many as the anchors. The expressions only
// the anchors answer are printed and written to /tmp/community-gap.txt.

const HK = 'housekeeper';
const ANCHOR = 'anchor';
const GAP_FILE = '/tmp/community-gap.txt';
/** Scrapes each target must have had before the evaluation (rates over 1m need a few; offset -15s needs 15 s). */
const MIN_SCRAPES = 25;

const expressions = loadExpressions();
let stack: Stack | undefined;
let svc: Service | undefined;
let anchors: Anchors | undefined;
let prom: PrometheusServer | undefined;
let load: Load | undefined;

before(async () => {
  stack = await startStack();
  const s = stack;
  load = await startLoad(s);
  svc = await startService(`
postgres:
  - { name: primary, url: "${s.primary.url({ db: 'app', user: 'housekeeper' })}" }
  - { name: replica, url: "${s.replica.url({ db: 'app', user: 'housekeeper' })}" }
pgbouncer:
  - { name: pgbouncer, url: "${s.pgbouncer.adminUrl()}", log_file: "${s.pgbouncer.logFile}" }
redis:
  - { name: redis, url: "${s.redis.url(0)}" }
`);
  anchors = await startAnchors({
    postgres: [
      { name: 'primary', server: s.primary },
      { name: 'replica', server: s.replica },
    ],
    redis: s.redis,
  });
  prom = await startPrometheus({
    scrapeTargets: [{ job: HK, url: `${svc.url}/metrics` }, ...anchors.exporters.map((e) => ({ job: ANCHOR, url: e.url }))],
    // The PgBouncer mixin's average durations look ahead by $__interval (as Grafana Cloud allows).
    extraArgs: ['--enable-feature=promql-negative-offset'],
  });
});

after(async () => {
  await prom?.destroy();
  await load?.stop();
  await anchors?.stop();
  await svc?.close();
  await stack?.stop();
});

test('the expression file parses and every expression normalises into valid PromQL for both jobs', () => {
  assert.ok(expressions.length >= 100, `only ${expressions.length} expressions`);
  for (const system of ['postgres', 'redis', 'pgbouncer']) {
    assert.ok(expressions.some((e) => e.system === system), `no ${system} expression`);
  }
  for (const e of expressions) {
    const n = normalise(e.expr);
    assert.doesNotMatch(n, /\$|%s/, `${e.id}: a template variable is left`);
    assert.match(forJob(e.expr, HK), /job="housekeeper"/, e.id);
  }
  // The normalisation, on one expression of each kind.
  assert.equal(normalise('pg_up != 1'), 'pg_up != bool 1');
  assert.equal(
    normalise('irate(redis_evicted_keys_total{instance=~"$instance"}[$__rate_interval])'),
    'irate(redis_evicted_keys_total{instance=~".*"}[1m])',
  );
  assert.equal(forJob('pgbouncer_pools_client_waiting_connections{job=~"$job"} > 20', HK), 'pgbouncer_pools_client_waiting_connections{job="housekeeper"} > bool 20');
  assert.equal(forJob('sum(redis_instance_info{namespace="%s", role="master"}) < 1', ANCHOR), 'sum(redis_instance_info{job="anchor",namespace=~".*",role="master"}) < bool 1');
});

test('housekeeper answers at least as many community expressions as the anchor exporters', async () => {
  const p = prom!;
  // Every target of both jobs has been scraped MIN_SCRAPES times (a condition, not a sleep).
  await eventuallyWithin(120_000)('enough scrapes of every target', async () => {
    const r = await p.query(`min by (job) (count_over_time(up[5m])) >= ${MIN_SCRAPES}`);
    return r.length === 2 ? true : undefined;
  });
  // Every anchor and housekeeper are up (a down exporter would make the comparison void).
  const down = await p.query('up == 0');
  assert.deepEqual(down.map((s) => s.metric), [], 'a scrape target is down');

  const time = Date.now() - EVAL_LAG_MS;
  const verdicts = await evaluate(p, expressions, [HK, ANCHOR], time);
  const t = tally(verdicts, [HK, ANCHOR]);
  const report = gapReport(t, HK, ANCHOR);
  fs.writeFileSync(GAP_FILE, report);
  process.stdout.write(`\n${report}\n(written to ${GAP_FILE})\n`);

  // PgBouncer's error counter (from its log file) answers awesome-prometheus-alerts' two alerts on it.
  for (const id of ['pgb-apa-errors', 'pgb-apa-max-connections']) {
    assert.equal(verdicts.find((v) => v.e.id === id)?.answered[HK], true, `housekeeper answers ${id}`);
  }
  // A failing housekeeper collector explains a short count: name it in the failure.
  const failing = (await p.query(`housekeeper_collector_success{job="${HK}"} == 0`)).map((x) => JSON.stringify(x.metric));
  const why = failing.length > 0 ? `\nhousekeeper collectors failing: ${failing.join(', ')}` : '';
  // The anchors must answer a real share, or the set (or the anchors' setup) is broken.
  assert.ok((t.byJob[ANCHOR] ?? 0) >= expressions.length / 2, `the anchors answer only ${t.byJob[ANCHOR]} of ${expressions.length}`);
  assert.ok(
    (t.byJob[HK] ?? 0) >= (t.byJob[ANCHOR] ?? 0),
    `housekeeper answers ${t.byJob[HK]} community expressions, the anchors ${t.byJob[ANCHOR]}; only the anchors answer:\n${t
      .onlyIn(ANCHOR, HK)
      .map((e) => `  ${e.id}: ${e.expr}`)
      .join('\n')}${why}`,
  );
});
