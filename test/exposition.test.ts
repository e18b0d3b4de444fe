import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { Counter, Gauge, Histogram, Registry, Summary, collectDefaultMetrics, type Metric } from 'prom-client';
import { renderExposition } from '../src/metrics/exposition.ts';
import { OPENMETRICS_CONTENT_TYPE, renderOpenMetrics, renderSelected, renderText } from '../src/metrics/registry.ts';
import { startStack } from './harness/stack.ts';
import { freeze, promClientRender } from './helpers/prom-client-render.ts';
import { startService, value } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

// housekeeper renders its exposition itself (src/metrics/exposition.ts); these tests hold it to
// the exact bytes prom-client's renderer produced for the same registry, in both formats.

/** Same bytes as prom-client's string in UTF-8; on a difference, the strings for a readable diff. */
function assertSameBytes(ours: Buffer, oracle: string, what: string): void {
  if (ours.equals(Buffer.from(oracle, 'utf8'))) return;
  assert.equal(ours.toString('utf8'), oracle, what);
  assert.fail(`${what}: same text, different bytes`);
}

const asMetrics = (r: Registry): Metric[] => r.getMetricsAsArray() as unknown as Metric[];
// prom-client's typings leave out a metric's name and the content-type argument of Registry.
const nameOf = (m: Metric): string => (m as unknown as { name: string }).name;
const OpenMetricsRegistry = Registry as unknown as new (contentType: string) => Registry;
const byTarget =
  (target: string) =>
  (labels: Partial<Record<string, string | number>>): boolean =>
    labels['target'] === target;

/** Every kind of family and value prom-client can hold, in one text-format registry. */
async function syntheticRegistry(): Promise<Registry> {
  const r = new Registry();
  const registers = [r];
  collectDefaultMetrics({ register: r });

  const g = new Gauge({ name: 'syn_gauge', help: 'A gauge: "quoted", back\\slash and\nnewline in help.', labelNames: ['target', 'name', 'code'], registers });
  g.set({ target: 'a', name: 'plain', code: 200 }, 1);
  g.set({ target: 'a', name: 'quote " back \\ newline \n end', code: 'x' }, 0.1 + 0.2);
  g.set({ target: 'b', name: 'nan', code: 'n' }, Number.NaN);
  g.set({ target: 'b', name: '+inf', code: 'p' }, Number.POSITIVE_INFINITY);
  g.set({ target: 'b', name: '-inf', code: 'm' }, Number.NEGATIVE_INFINITY);
  g.set({ target: 'a', name: 'big', code: 'b' }, 1e21);
  g.set({ target: 'a', name: 'small', code: 's' }, -1.5e-7);
  g.set({ target: 'a', name: 'negative zero', code: 'z' }, -0);
  g.set({ target: 'b', name: 'unicode é 😀 ☃', code: 'u' }, 42);
  g.set({ target: 'b', name: 'lone surrogate \ud800 here', code: 'l' }, 7);
  // Label order is the order of the labels object as stored, not the declared one.
  g.set({ code: 'reordered', target: 'a', name: 'order' }, 3);
  g.set({ target: 'a', name: undefined, code: 'missing name' }, 4);
  new Gauge({ name: 'syn_gauge_unlabelled', help: 'An unlabelled gauge never set (0).', registers });
  new Gauge({ name: 'syn_gauge_empty', help: 'A labelled gauge with no series.', labelNames: ['target'], registers });

  const many = new Gauge({ name: 'syn_gauge_many', help: 'Enough series to cross the renderer\'s chunks, multibyte at every line.', labelNames: ['target', 'i'], registers });
  for (let i = 0; i < 3000; i++) many.set({ target: i % 2 === 0 ? 'a' : 'b', i: `série ${i} ✓` }, i / 7);

  const withTotal = new Counter({ name: 'syn_events_total', help: 'A counter with _total.', labelNames: ['target', 'kind'], registers });
  withTotal.inc({ target: 'a', kind: 'x' }, 3);
  withTotal.inc({ target: 'b', kind: 'y' }, 0.5);
  withTotal.inc({ target: 'b', kind: 'nan' }, Number.NaN);
  const withoutTotal = new Counter({ name: 'syn_xact_commit', help: 'A counter without _total (postgres_exporter style).', labelNames: ['target'], registers });
  withoutTotal.inc({ target: 'a' }, 12);
  withoutTotal.inc({ target: 'b' }, 1);
  new Counter({ name: 'syn_unlabelled_total', help: 'An unlabelled counter never incremented.', registers });
  new Counter({ name: 'syn_empty_total', help: 'A labelled counter with no series.', labelNames: ['target'], registers });

  const h = new Histogram({ name: 'syn_duration_seconds', help: 'A labelled histogram.', labelNames: ['target', 'step'], buckets: [1e-7, 0.1, 1, 2.5, 1e21], registers });
  for (const v of [0, 0.05, 0.1, 0.7, 3, 1e22]) h.observe({ target: 'a', step: 'one' }, v);
  h.observe({ target: 'b', step: 'two "q"' }, 2);
  h.zero({ target: 'b', step: 'zeroed' });
  const plain = new Histogram({ name: 'syn_plain_seconds', help: 'An unlabelled histogram with default buckets.', registers });
  plain.observe(0.3);
  plain.observe(12);
  new Histogram({ name: 'syn_empty_seconds', help: 'A labelled histogram with no series.', labelNames: ['target'], registers });

  // A Summary goes through prom-client's own get() (generic path).
  const s = new Summary({ name: 'syn_summary_seconds', help: 'A summary.', labelNames: ['target'], percentiles: [0.5, 0.9, 0.99], registers });
  for (let i = 1; i <= 100; i++) s.observe({ target: i % 3 === 0 ? 'b' : 'a' }, i / 10);
  new Summary({ name: 'syn_summary_unlabelled', help: 'An unlabelled summary, unobserved.', registers });

  // Collect callbacks run before their metric is read, sync or async, as in prom-client.
  new Gauge({
    name: 'syn_collected',
    help: 'Set by its collect callback.',
    registers,
    collect() {
      this.set(5);
    },
  });
  new Gauge({
    name: 'syn_collected_async',
    help: 'Set by its async collect callback.',
    labelNames: ['target'],
    registers,
    async collect() {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.set({ target: 'a' }, 6);
    },
  });
  await freeze(asMetrics(r).filter((m) => !nameOf(m).startsWith('syn_')));
  return r;
}

test('a synthetic registry of every metric type renders to prom-client\'s bytes, text and OpenMetrics', async () => {
  const r = await syntheticRegistry();
  const metrics = asMetrics(r);

  assertSameBytes(await renderText(r), await r.metrics(), 'text, whole registry (prom-client registry.metrics())');
  assertSameBytes(await renderOpenMetrics(r), await promClientRender(metrics, true), 'OpenMetrics, whole registry');
  assertSameBytes(await renderExposition(metrics, false), await promClientRender(metrics, false), 'text, through the selected-families path');
  for (const target of ['a', 'b', 'nobody']) {
    for (const om of [false, true]) {
      assertSameBytes(await renderSelected(metrics, om, byTarget(target)), await promClientRender(metrics, om, byTarget(target)), `target ${target}, om ${om}`);
    }
  }
  // Single families, and none at all.
  for (const m of metrics) {
    for (const om of [false, true]) assertSameBytes(await renderSelected([m], om), await promClientRender([m], om), `${nameOf(m)}, om ${om}`);
  }
  for (const om of [false, true]) assertSameBytes(await renderSelected([], om), await promClientRender([], om), `no families, om ${om}`);

  // The cases the comparison is about are really in the output.
  const om = (await renderOpenMetrics(r)).toString('utf8');
  const text = (await renderText(r)).toString('utf8');
  assert.match(text, /^syn_gauge\{target="b",name="nan",code="n"\} Nan$/m);
  assert.match(text, /^syn_gauge\{target="b",name="\+inf",code="p"\} \+Inf$/m);
  assert.match(text, /^syn_gauge\{target="a",name="quote \\" back \\\\ newline \\n end",code="x"\} 0\.30000000000000004$/m);
  assert.match(text, /^syn_gauge\{code="reordered",target="a",name="order"\} 3$/m);
  assert.match(text, /^syn_duration_seconds_bucket\{le="1e-7",target="a",step="one"\} 1$/m);
  assert.match(text, /^syn_collected 5$/m);
  assert.match(text, /^syn_collected_async\{target="a"\} 6$/m);
  assert.match(text, /^syn_summary_seconds\{quantile="0\.5",target="a"\} /m);
  assert.match(text, /^# HELP syn_gauge A gauge: "quoted", back\\\\slash and\\nnewline in help\.$/m);
  assert.match(text, /^# TYPE syn_events_total counter\nsyn_events_total\{target="a",kind="x"\} 3$/m);
  assert.match(om, /^# TYPE syn_events counter\nsyn_events_total\{target="a",kind="x"\} 3$/m);
  assert.match(om, /^# TYPE syn_xact_commit unknown\nsyn_xact_commit\{target="a"\} 12$/m);
  assert.match(om, /\n# EOF\n$/);
  assert.match(text, /^# TYPE syn_gauge_empty gauge\n\n# HELP/m);
});

test('exemplars (OpenMetrics registries only) take prom-client\'s own path and keep their bytes', async () => {
  const r = new OpenMetricsRegistry(OPENMETRICS_CONTENT_TYPE);
  const c = new Counter<string>({ name: 'ex_requests_total', help: 'With exemplars.', labelNames: ['target'], enableExemplars: true, registers: [r] });
  c.inc({ labels: { target: 'a' }, value: 2, exemplarLabels: { trace_id: 'abc"1' } });
  c.inc({ labels: { target: 'b' }, value: 1 });
  const h = new Histogram<string>({ name: 'ex_seconds', help: 'Histogram with exemplars.', labelNames: ['target'], buckets: [0.1, 1], enableExemplars: true, registers: [r] });
  h.observe({ labels: { target: 'a' }, value: 0.5, exemplarLabels: { trace_id: 'def' } });
  const metrics = asMetrics(r);
  for (const om of [false, true]) {
    assertSameBytes(await renderSelected(metrics, om), await promClientRender(metrics, om), `exemplars, om ${om}`);
    assertSameBytes(await renderSelected(metrics, om, byTarget('a')), await promClientRender(metrics, om, byTarget('a')), `exemplars, target a, om ${om}`);
  }
  assert.match((await renderSelected(metrics, true)).toString(), /^ex_requests_total\{target="a"\} 2 # \{trace_id="abc\\"1"\} 2 /m);
});

test('the service against a real stack: /metrics, /probe and collect=none answer prom-client\'s bytes for the registry they rendered', async (t) => {
  const stack = await startStack();
  t.after(() => stack.stop());
  // A table whose name needs escaping in a label value, from a real catalog.
  const c = new pg.Client({ connectionString: stack.primary.url({ db: 'postgres' }) });
  await c.connect();
  try {
    await c.query(`CREATE TABLE "odd ""name"" \\ é" (id int PRIMARY KEY, note text)`);
    await c.query(`INSERT INTO "odd ""name"" \\ é" SELECT g, 'n' FROM generate_series(1, 100) g`);
    await c.query(`DELETE FROM "odd ""name"" \\ é" WHERE id % 2 = 0`);
  } finally {
    await c.end();
  }
  const svc = await startService(`
postgres:
  - { name: primary, url: "${stack.primary.url({ db: 'postgres' })}" }
  - { name: replica, url: "${stack.replica.url({ db: 'postgres' })}" }
pgbouncer:
  - { name: bouncer, url: "${stack.pgbouncer.adminUrl()}" }
redis:
  - { name: cache, url: "${stack.redis.url()}" }
`);
  t.after(() => svc.close());
  const { registry, runner } = svc.app;
  await until(
    'every collector succeeding and the odd table in pg_stat_user_tables',
    async () => {
      const r = await svc.scrape();
      const ok = r.body.split('\n').filter((l) => l.startsWith('housekeeper_collector_success{'));
      return ok.length >= 4 && ok.every((l) => l.endsWith(' 1')) && value(r.body, 'pg_stat_user_tables_n_live_tup', { target: 'primary', relname: 'odd \\"name\\" \\\\ é' }) !== undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );

  // From here the registry changes only by collections (the default metrics' callbacks and the
  // GC histogram are stilled), so a body and the oracle rendered right after it see one state.
  const all = asMetrics(registry);
  await freeze(all);
  const gc = registry.getSingleMetric('nodejs_gc_duration_seconds') as unknown as { observe: unknown } | undefined;
  if (gc !== undefined) gc.observe = () => {};

  const get = async (url: string, accept?: string): Promise<Buffer> => {
    const r = await fetch(`${svc.url}${url}`, { headers: accept === undefined ? {} : { accept }, signal: AbortSignal.timeout(30_000) });
    assert.equal(r.status, 200, url);
    return Buffer.from(await r.arrayBuffer());
  };
  const OM = 'application/openmetrics-text; version=1.0.0';

  for (const om of [false, true]) {
    const body = await get('/metrics', om ? OM : undefined);
    assertSameBytes(body, om ? await promClientRender(all, true) : await registry.metrics(), `/metrics, om ${om}`);
    // And the renderer itself, on the same state, without HTTP in between.
    assertSameBytes(await (om ? renderOpenMetrics : renderText)(registry), om ? await promClientRender(all, true) : await registry.metrics(), `render, om ${om}`);

    const skip = runner.targetFamilies();
    const own = all.filter((m) => !skip.has(nameOf(m)));
    assertSameBytes(await get('/metrics?collect=none', om ? OM : undefined), await promClientRender(own, om), `collect=none, om ${om}`);

    for (const target of runner.targetNames()) {
      const body = await get(`/probe?target=${target}`, om ? OM : undefined);
      const families = (runner.probeFamilies(target) ?? []).flatMap((name) => registry.getSingleMetric(name) ?? []) as unknown as Metric[];
      assertSameBytes(body, await promClientRender(families, om, byTarget(target)), `/probe ${target}, om ${om}`);
    }
  }
  const text = (await renderText(registry)).toString('utf8');
  assert.ok(text.split('\n').length > 1000, 'a fully populated registry');
  assert.match(text, /relname="odd \\"name\\" \\\\ é"/);
});
