import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp, scrapeDeadlineMs, type App } from '../src/app.ts';
import { defineCollector, type AnyCollector } from '../src/collectors/collector.ts';
import type { Targets } from '../src/targets/index.ts';
import { configFrom, memoryLogger } from './helpers/config.ts';
import { elapse } from './helpers/wait.ts';

// The runner's contract, with collectors made for the test: per-target isolation, the
// deadline, single-flight, the busy guard and vanishing label sets.

interface FakeTarget {
  name: string;
}
interface Behaviour {
  calls: number;
  /** What the next collect does: emit these label values, throw, or hang until aborted. */
  mode: 'ok' | 'throw' | 'hang' | 'hang-ignoring-abort';
  tables: string[];
  gate?: Promise<void>;
}

function fakeCollector(name: string, targets: string[], b: Record<string, Behaviour>): AnyCollector {
  return defineCollector<FakeTarget, ReturnType<typeof declare>>({
    name,
    enabledByDefault: true,
    targets: () => targets.map((t) => ({ name: t })),
    metrics: declare,
    up: (m) => m.up,
    async collect(ctx, m) {
      const beh = b[ctx.target.name];
      assert.ok(beh);
      beh.calls++;
      if (beh.gate) await beh.gate;
      if (beh.mode === 'throw') throw new Error('connection refused (password=hunter2)');
      if (beh.mode === 'hang') {
        await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      }
      if (beh.mode === 'hang-ignoring-abort') await new Promise(() => {});
      for (const t of beh.tables) ctx.set(m.rows, { table: t }, 1);
      ctx.set(m.events, {}, 42);
      ctx.set(m.legacy, {}, 7);
    },
  });
  function declare(f: import('../src/metrics/registry.ts').MetricFactory) {
    return {
      up: f.gauge(`${name}_up`, 'Whether the fake answered.'),
      rows: f.gauge(`${name}_rows`, 'Rows per table.', ['table']),
      events: f.counter(`${name}_events_total`, 'Events seen.'),
      legacy: f.counter(`${name}_legacy`, 'A counter named without _total.'),
    };
  }
}

const noTargets: Targets = { postgres: [], pgbouncer: [], redis: [], elasticsearch: [] };

function setup(behaviours: Record<string, Behaviour>, yaml = ''): { app: App; lines: string[] } {
  const { log, lines } = memoryLogger();
  const config = configFrom(yaml);
  const app = buildApp({ config, log, targets: noTargets, collectors: [fakeCollector('fake', Object.keys(behaviours), behaviours)] });
  return { app, lines };
}

function beh(mode: Behaviour['mode'] = 'ok', tables: string[] = ['a']): Behaviour {
  return { calls: 0, mode, tables };
}

async function scrape(app: App, headers: Record<string, string> = {}): Promise<{ status: number; body: string; type: string }> {
  const r = await app.server.inject({ method: 'GET', url: '/metrics', headers });
  return { status: r.statusCode, body: r.body, type: String(r.headers['content-type']) };
}

test('a failing target costs only its own metrics: success 0, up 0, the others intact, 200', async (t) => {
  const b = { good: beh('ok', ['x']), bad: beh('throw', ['y']) };
  const { app, lines } = setup(b);
  t.after(() => app.close());
  const r = await scrape(app);
  assert.equal(r.status, 200);
  assert.match(r.body, /^housekeeper_collector_success\{collector="fake",target="good"\} 1$/m);
  assert.match(r.body, /^housekeeper_collector_success\{collector="fake",target="bad"\} 0$/m);
  assert.match(r.body, /^fake_up\{target="good"\} 1$/m);
  assert.match(r.body, /^fake_up\{target="bad"\} 0$/m);
  assert.match(r.body, /^fake_rows\{target="good",table="x"\} 1$/m);
  assert.doesNotMatch(r.body, /target="bad",table=/);
  assert.match(r.body, /^housekeeper_collector_duration_seconds\{collector="fake",target="bad"\} [0-9.e-]+$/m);
  assert.ok(lines.some((l) => l.includes('collection failed') && l.includes('"target":"bad"')));
});

test('a hung target is cut off at the deadline from Prometheus\'s header and the scrape answers 200', async (t) => {
  const b = { good: beh('ok'), hung: beh('hang') };
  const { app } = setup(b, 'server: { scrape_timeout_offset: 100ms }\n');
  t.after(() => app.close());
  // If the deadline were not honoured, this would wait for the hung collector forever and
  // the test would fail by its own timeout.
  const r = await scrape(app, { 'x-prometheus-scrape-timeout-seconds': '0.4' });
  assert.equal(r.status, 200);
  assert.match(r.body, /^housekeeper_collector_success\{collector="fake",target="hung"\} 0$/m);
  assert.match(r.body, /^fake_up\{target="hung"\} 0$/m);
  assert.match(r.body, /^fake_up\{target="good"\} 1$/m);
});

test('a target whose last collection is still running is not queried again (no pile-up)', async (t) => {
  const b = { stuck: beh('hang-ignoring-abort') };
  const { app } = setup(b);
  t.after(() => app.close());
  for (let i = 0; i < 3; i++) {
    const r = await scrape(app, { 'x-prometheus-scrape-timeout-seconds': '0.3' });
    assert.equal(r.status, 200);
    assert.match(r.body, /^fake_up\{target="stuck"\} 0$/m);
  }
  assert.equal(b.stuck.calls, 1);
});

test('concurrent scrapes share one collection in flight', async (t) => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const b: Record<string, Behaviour> = { only: { ...beh("ok"), gate } };
  const { app } = setup(b);
  t.after(() => app.close());
  const scrapes = Array.from({ length: 8 }, () => scrape(app));
  await elapse(50, 'the scrapes reach the gated collection (nothing outside the runner shows a scrape joining one)');
  open();
  const results = await Promise.all(scrapes);
  assert.equal(b["only"]!.calls, 1);
  for (const r of results) assert.match(r.body, /^fake_up\{target="only"\} 1$/m);
  assert.equal(new Set(results.map((r) => r.body)).size, 1, 'and one rendering of it');
  delete b["only"]!.gate;
  await scrape(app);
  assert.equal(b["only"]!.calls, 2, 'a scrape after the flight landed starts a new collection');
});

test('label sets that disappear from a target disappear from the output', async (t) => {
  const b = { db: beh('ok', ['orders', 'users']) };
  const { app } = setup(b);
  t.after(() => app.close());
  assert.match((await scrape(app)).body, /table="orders"/);
  b.db.tables = ['users'];
  const body = (await scrape(app)).body;
  assert.doesNotMatch(body, /table="orders"/);
  assert.match(body, /table="users"/);
});

test('OpenMetrics when the Accept header asks; counters keep _total in both formats', async (t) => {
  const { app } = setup({ db: beh() });
  t.after(() => app.close());
  const om = await scrape(app, { accept: 'application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5' });
  assert.match(om.type, /^application\/openmetrics-text; version=1\.0\.0/);
  assert.match(om.body, /^# TYPE fake_events counter$/m);
  assert.match(om.body, /^fake_events_total\{target="db"\} 42$/m);
  assert.match(om.body, /# EOF\n$/);
  // A counter named without _total (as postgres_exporter names some) keeps its name.
  assert.match(om.body, /^# TYPE fake_legacy unknown$/m);
  assert.match(om.body, /^fake_legacy\{target="db"\} 7$/m);
  assert.doesNotMatch(om.body, /fake_legacy_total/);
  const text = await scrape(app);
  assert.match(text.type, /^text\/plain; version=0\.0\.4/);
  assert.match(text.body, /^# TYPE fake_events_total counter$/m);
  assert.match(text.body, /^fake_events_total\{target="db"\} 42$/m);
});

test('healthz and readyz answer; readyz turns 503 while shutting down', async () => {
  const { app } = setup({});
  assert.equal((await app.server.inject('/healthz')).statusCode, 200);
  assert.equal((await app.server.inject('/readyz')).statusCode, 200);
  const closing = app.close();
  assert.equal((await app.server.inject('/readyz')).statusCode, 503);
  await closing;
});

test('the scrape deadline is Prometheus\'s timeout less the offset, else the default', () => {
  const config = configFrom('server: { scrape_timeout: 7s, scrape_timeout_offset: 500ms }\n');
  assert.equal(scrapeDeadlineMs('10', config), 9_500);
  assert.equal(scrapeDeadlineMs('0.2', config), 100);
  assert.equal(scrapeDeadlineMs(undefined, config), 7_000);
  assert.equal(scrapeDeadlineMs('junk', config), 7_000);
});

test('no secret from an error reaches the log', async (t) => {
  const { registerSecret } = await import('../src/log.ts');
  registerSecret('hunter2');
  const { app, lines } = setup({ bad: beh('throw') });
  t.after(() => app.close());
  await scrape(app);
  assert.ok(lines.some((l) => l.includes('password=***')));
  assert.ok(!lines.some((l) => l.includes('hunter2')));
});

async function probe(app: App, query: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; type: string }> {
  const r = await app.server.inject({ method: 'GET', url: `/probe${query}`, headers });
  return { status: r.statusCode, body: r.body, type: String(r.headers['content-type']) };
}

test('/probe?target=NAME collects and serves that target only, with its success/duration and none of the process metrics', async (t) => {
  const b = { one: beh('ok', ['x']), two: beh('ok', ['y']) };
  const { app } = setup(b);
  t.after(() => app.close());
  const r = await probe(app, '?target=one');
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/plain; version=0\.0\.4/);
  assert.match(r.body, /^fake_up\{target="one"\} 1$/m);
  assert.match(r.body, /^fake_rows\{target="one",table="x"\} 1$/m);
  assert.match(r.body, /^fake_events_total\{target="one"\} 42$/m);
  assert.match(r.body, /^housekeeper_collector_success\{collector="fake",target="one"\} 1$/m);
  assert.match(r.body, /^housekeeper_collector_duration_seconds\{collector="fake",target="one"\} [0-9.e-]+$/m);
  assert.doesNotMatch(r.body, /target="two"/);
  assert.doesNotMatch(r.body, /^(housekeeper_build_info|process_|nodejs_)/m);
  assert.equal(b.one.calls, 1);
  assert.equal(b.two.calls, 0, 'the other target is not queried');
  // /metrics still has everything, the service's own metrics included.
  const all = (await scrape(app)).body;
  assert.match(all, /^fake_up\{target="two"\} 1$/m);
  assert.match(all, /^housekeeper_build_info\{/m);
  assert.match(all, /^process_cpu_seconds_total /m);
});

test('/probe of a down target answers 200 with its *_up 0; of a hung one, within the deadline', async (t) => {
  const b = { bad: beh('throw'), hung: beh('hang-ignoring-abort'), good: beh() };
  const { app } = setup(b, 'server: { scrape_timeout_offset: 100ms }\n');
  t.after(() => app.close());
  const down = await probe(app, '?target=bad');
  assert.equal(down.status, 200);
  assert.match(down.body, /^fake_up\{target="bad"\} 0$/m);
  assert.match(down.body, /^housekeeper_collector_success\{collector="fake",target="bad"\} 0$/m);
  // Without the deadline this would wait forever and the test would fail by its timeout.
  const hung = await probe(app, '?target=hung', { 'x-prometheus-scrape-timeout-seconds': '0.4' });
  assert.equal(hung.status, 200);
  assert.match(hung.body, /^fake_up\{target="hung"\} 0$/m);
  // The busy guard: the hung collection is not started again by the next probe.
  await probe(app, '?target=hung', { 'x-prometheus-scrape-timeout-seconds': '0.4' });
  assert.equal(b.hung.calls, 1);
});

test('/probe without a target, or with an unknown one, is a 400 that names it', async (t) => {
  const { app } = setup({ primary: beh(), replica: beh() });
  t.after(() => app.close());
  for (const q of ['', '?target=', '?target=a&target=b']) {
    const r = await probe(app, q);
    assert.equal(r.status, 400, q);
    assert.match(JSON.parse(r.body).error, /target=NAME/);
  }
  const r = await probe(app, '?target=nope');
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).error, 'unknown target "nope" (configured: primary, replica)');
});

test('/probe negotiates OpenMetrics like /metrics', async (t) => {
  const { app } = setup({ db: beh() });
  t.after(() => app.close());
  const om = await probe(app, '?target=db', { accept: 'application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5' });
  assert.match(om.type, /^application\/openmetrics-text; version=1\.0\.0/);
  assert.match(om.body, /^# TYPE fake_events counter$/m);
  assert.match(om.body, /^fake_events_total\{target="db"\} 42$/m);
  assert.match(om.body, /^# TYPE fake_legacy unknown$/m);
  assert.match(om.body, /# EOF\n$/);
});

test('probes and /metrics share a target\'s collection in flight', async (t) => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const b: Record<string, Behaviour> = { a: { ...beh(), gate }, b: beh() };
  const { app } = setup(b);
  t.after(() => app.close());
  const probes = Array.from({ length: 4 }, () => probe(app, '?target=a'));
  const full = scrape(app);
  await elapse(50, 'the probes and the scrape reach the gated collection (nothing outside the runner shows one joining)');
  open();
  const results = await Promise.all([...probes, full]);
  assert.equal(b['a']!.calls, 1, 'one collection of a for four probes and a full scrape');
  assert.equal(b['b']!.calls, 1);
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.match(r.body, /^fake_up\{target="a"\} 1$/m, 'none saw a false busy failure');
  }
});

test('/metrics?collect=none serves the service\'s own metrics and collects nothing', async (t) => {
  const b = { db: beh() };
  const { app } = setup(b);
  t.after(() => app.close());
  const r = await app.server.inject({ method: 'GET', url: '/metrics?collect=none' });
  assert.equal(r.statusCode, 200);
  assert.match(r.body, /^housekeeper_build_info\{/m);
  assert.match(r.body, /^process_cpu_seconds_total /m);
  assert.doesNotMatch(r.body, /^(# TYPE )?(fake_|housekeeper_collector_)/m);
  assert.equal(b.db.calls, 0);
  const om = await app.server.inject({ method: 'GET', url: '/metrics?collect=none', headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
  assert.match(String(om.headers['content-type']), /^application\/openmetrics-text/);
  assert.match(om.body, /# EOF\n$/);
});
