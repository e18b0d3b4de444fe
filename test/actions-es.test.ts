import { after, afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { parse, stringify } from 'yaml';
import type { ActionContext } from '../src/actions/action.ts';
import { actions } from '../src/actions/index.ts';
import { closeTargets, createTargets, type Targets } from '../src/targets/index.ts';
import { startElasticsearchMock, type ElasticsearchMock, type MockState, type RecordedRequest } from './harness/elasticsearch.ts';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { configFrom, memoryLogger } from './helpers/config.ts';
import { fingerprintOf, notification, rulesDir, startInstance, TOKEN, until } from './helpers/remediation.ts';
import { action, actionContext, params } from './helpers/actions.ts';
import { until as waitUntil } from './helpers/wait.ts';

// es-delete-old-indices, es-forcemerge and es-snapshot through the official client against the
// harness's Elasticsearch stand-in (none can run here; it answers with the documented shapes
// and records every request, so the tests see exactly which indices were named).

const DAY = 86_400_000;
const now = Date.now();

/** The log cluster the runbook describes: daily indices, a rollover alias, a data stream, strays. */
function cluster(): Partial<MockState> {
  return {
    indices: [
      { name: 'logs-2024.01.01', createdMs: now - 60 * DAY, storeBytes: 1000, status: 'close' },
      { name: 'logs-rollover-000000', createdMs: now - 50 * DAY, storeBytes: 1000, segments: 4 },
      { name: 'logs-rollover-000001', createdMs: now - 45 * DAY, storeBytes: 1000, segments: 4 },
      { name: 'logs-old-a', createdMs: now - 40 * DAY, storeBytes: 1000, segments: 3 },
      { name: 'logs-old-b', createdMs: now - 31 * DAY, storeBytes: 1000, shards: 2, segments: 9 },
      { name: 'logs-current', createdMs: now - 29 * DAY, storeBytes: 1000, shards: 2, segments: 7 },
      { name: 'logs-merged', createdMs: now - 10 * DAY, storeBytes: 1000, segments: 1 },
      { name: 'logs-single-alias', createdMs: now - 10 * DAY, storeBytes: 1000, segments: 6 },
      { name: 'logs-frozen', createdMs: now - DAY / 2, storeBytes: 1000, segments: 3, settings: { 'index.blocks.write': 'true' } },
      { name: 'logs-today', createdMs: now - DAY / 4, storeBytes: 1000, segments: 4 },
      { name: '.ds-logs-app-2024.01.01-000001', createdMs: now - 70 * DAY, storeBytes: 1000, hidden: true, segments: 5 },
      { name: '.ds-logs-app-2024.03.01-000002', createdMs: now - 35 * DAY, storeBytes: 1000, hidden: true, segments: 5 },
      { name: '.kibana_1', createdMs: now - 300 * DAY, storeBytes: 1000, hidden: true },
      { name: 'archive-2020', createdMs: now - 400 * DAY, storeBytes: 1000 },
      { name: 'other-old', createdMs: now - 100 * DAY, storeBytes: 1000 },
    ],
    aliases: [
      { alias: 'logs-write', index: 'logs-rollover-000000', isWriteIndex: false },
      { alias: 'logs-write', index: 'logs-rollover-000001', isWriteIndex: true },
      // One index, is_write_index unset: writes go to it.
      { alias: 'current-logs', index: 'logs-single-alias' },
      // Its name matches logs-*, so _cat/indices/logs-* expands it to an index that does not.
      { alias: 'logs-everything', index: 'archive-2020' },
    ],
    dataStreams: [{ name: 'logs-app', indices: ['.ds-logs-app-2024.01.01-000001', '.ds-logs-app-2024.03.01-000002'] }],
    repositories: { nightly: [] },
  };
}

let es: ElasticsearchMock | undefined;
let targets: Targets | undefined;

afterEach(async () => {
  if (targets) await closeTargets(targets);
  await es?.close();
  targets = undefined;
  es = undefined;
});

async function setUp(state: Partial<MockState>, extra = ''): Promise<{ es: ElasticsearchMock; ctx: ActionContext }> {
  es = await startElasticsearchMock(state);
  const ctx = actionContext(`
elasticsearch:
  - name: logs
    url: ${es.url}
    index_patterns: ['logs-*']
    retention: 30d
    snapshot_repository: nightly
  - name: streams
    url: ${es.url}
    index_patterns: ['.ds-logs-app-*', '*kibana*']
    retention: 30d
${extra}`);
  targets = ctx.targets;
  return { es, ctx };
}

const writes = (m: ElasticsearchMock): RecordedRequest[] => m.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
const names = (m: ElasticsearchMock): string[] => m.state.indices.map((i) => i.name);

/**
 * What the cluster() fixture holds after es-delete-old-indices on logs-*: the alias's write
 * index, young indices, the data stream's backing indices (the pattern expands the data stream
 * logs-app, whose index names do not match), the index behind the alias logs-everything, and
 * everything outside the pattern.
 */
const AFTER_RETENTION_DELETE = [
  'logs-rollover-000001',
  'logs-current',
  'logs-merged',
  'logs-single-alias',
  'logs-frozen',
  'logs-today',
  '.ds-logs-app-2024.01.01-000001',
  '.ds-logs-app-2024.03.01-000002',
  '.kibana_1',
  'archive-2020',
  'other-old',
];

test('the Elasticsearch actions: registered, strict params, a target key; labels cannot widen them', () => {
  for (const [name, p] of [
    ['es-delete-old-indices', { target: 'logs' }],
    ['es-forcemerge', { target: 'logs' }],
    ['es-snapshot', { target: 'logs' }],
  ] as const) {
    const a = action(name);
    assert.ok(a.description.length > 100 && /[Ii]dempotent/.test(a.description), `${name} says what it guarantees`);
    assert.equal(a.idempotent, true);
    assert.equal(a.disruptive, false);
    assert.equal(a.targetKey(params(a, p)), 'elasticsearch:logs');
    // Patterns, retention and repository come from config: params cannot name them.
    for (const extra of [{ pattern: '*' }, { index: 'logs-*' }, { retention: '1s' }, { repository: 'x' }]) {
      assert.equal(Value.Check(a.params, { ...p, ...extra }), false, `${name} refuses ${JSON.stringify(extra)}`);
    }
    for (const bad of ['logs,*', 'logs; rm -rf', '{{ $labels.target }}', '*']) assert.equal(Value.Check(a.params, { target: bad }), false);
  }
  assert.equal(Value.Check(action('es-snapshot').params, { target: 'logs', prefix: 'Upper' }), false, 'snapshot names are lowercase');
  assert.equal(Value.Check(action('es-snapshot').params, { target: 'logs', prefix: 'a,b' }), false);
});

test('es-delete-old-indices names exactly the old indices of the pattern, one DELETE each, never a wildcard', async () => {
  const { es, ctx } = await setUp(cluster());
  const del = action('es-delete-old-indices');
  const p = params(del, { target: 'logs' });

  const plan = await del.plan(ctx, p);
  assert.equal(plan.nothingToDo, false);
  assert.equal(
    plan.summary,
    'delete 4 indices of "logs" past the 30d retention: logs-2024.01.01 (60d), logs-rollover-000000 (50d), logs-old-a (40d), logs-old-b (31d); ' +
      'refused: logs-rollover-000001 (write index of alias logs-write)',
  );
  assert.deepEqual(writes(es), [], 'plan only reads');

  // Two per run first: the oldest go first, the rest wait.
  const first = await del.run(ctx, params(del, { target: 'logs', max_indices: 2 }), AbortSignal.timeout(30_000));
  assert.match(first.summary, /^deleted 2 indices of "logs": logs-2024\.01\.01, logs-rollover-000000; 2 more past retention, next run; refused: /);
  const partial = await del.verify(ctx, p);
  assert.equal(partial.fixed, false);
  assert.match(partial.detail, /^still past the 30d retention: logs-old-a, logs-old-b/);

  const r = await del.run(ctx, p, AbortSignal.timeout(30_000));
  assert.deepEqual(r.details?.['deleted'], ['logs-old-a', 'logs-old-b']);
  assert.deepEqual(
    writes(es).map((w) => [w.method, w.path, w.query]),
    [
      ['DELETE', '/logs-2024.01.01', { expand_wildcards: 'none' }],
      ['DELETE', '/logs-rollover-000000', { expand_wildcards: 'none' }],
      ['DELETE', '/logs-old-a', { expand_wildcards: 'none' }],
      ['DELETE', '/logs-old-b', { expand_wildcards: 'none' }],
    ],
    'exactly the old indices, each by name',
  );
  assert.deepEqual(names(es), AFTER_RETENTION_DELETE);
  const v = await del.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  assert.equal(v.detail, 'no deletable index of "logs" past the 30d retention remains; refused: logs-rollover-000001 (write index of alias logs-write)');
  assert.equal((await del.plan(ctx, p)).nothingToDo, true, 'idempotent: nothing left to do');
});

test('es-delete-old-indices refuses data-stream backing indices and hidden dot-indices a wildcard does not name', async () => {
  const { es, ctx } = await setUp(cluster());
  const del = action('es-delete-old-indices');
  const p = params(del, { target: 'streams' });
  const plan = await del.plan(ctx, p);
  assert.equal(plan.nothingToDo, true);
  assert.equal(
    plan.summary,
    'no index of "streams" (.ds-logs-app-*, *kibana*) to delete past the 30d retention; refused: ' +
      '.ds-logs-app-2024.01.01-000001 (backing index of data stream logs-app (its lifecycle deletes it)), ' +
      '.ds-logs-app-2024.03.01-000002 (backing index of data stream logs-app (its lifecycle deletes it))',
  );
  await del.run(ctx, p, AbortSignal.timeout(30_000));
  assert.deepEqual(writes(es), []);
  assert.ok(names(es).includes('.kibana_1'), '*kibana* does not reach a dot-index');
});

test('es-delete-old-indices fails cleanly: a 5xx stops it and says what was deleted; unknown writers delete nothing', async () => {
  const password = 'es-secret-pw-123';
  const state = { ...cluster(), auth: { username: 'elastic', password } };
  es = await startElasticsearchMock(state);
  const config = configFrom(`
elasticsearch:
  - name: logs
    url: ${es.urlWith('elastic', password)}
    index_patterns: ['logs-*']
    retention: 30d
`);
  const { log } = memoryLogger();
  targets = createTargets(config, log);
  const ctx: ActionContext = { targets, config, log };
  const del = action('es-delete-old-indices');
  const p = params(del, { target: 'logs' });

  es.state.fail = { status: 503, type: 'master_not_discovered_exception', reason: null, path: /^\/logs-old-a$/ };
  const err = await del.run(ctx, p, AbortSignal.timeout(30_000)).then(
    () => assert.fail('run should fail'),
    (e: Error) => e,
  );
  assert.equal(err.message, 'DELETE /logs-old-a: HTTP 503 master_not_discovered_exception (deleted before it: logs-2024.01.01, logs-rollover-000000)');
  assert.ok(!err.message.includes(password) && !err.message.includes(es.url));
  assert.deepEqual(writes(es).map((w) => w.path), ['/logs-2024.01.01', '/logs-rollover-000000', '/logs-old-a'], 'nothing after the failure');
  assert.equal((await del.verify(ctx, p)).fixed, false);

  // When the cluster cannot say which indices are written to, nothing is deleted.
  es.state.fail = { status: 403, type: 'security_exception', reason: 'action [indices:admin/data_stream/get] is unauthorized', path: /^\/_data_stream/ };
  await assert.rejects(del.run(ctx, p, AbortSignal.timeout(30_000)), /^Error: GET \/_data_stream: HTTP 403 security_exception: action \[indices:admin\/data_stream\/get\] is unauthorized$/);
  assert.equal(writes(es).length, 3);

  // Once it answers again, the rest goes; an index deleted meanwhile counts as gone.
  es.state.fail = undefined;
  const r = await del.run(ctx, p, AbortSignal.timeout(30_000));
  assert.deepEqual(r.details?.['deleted'], ['logs-old-a', 'logs-old-b']);
  assert.equal((await del.verify(ctx, p)).fixed, true);
});

test('es-forcemerge merges only indices no longer written, to 1 segment, polling the merge task', async () => {
  const { es, ctx } = await setUp({ ...cluster(), forcemergePolls: 2 });
  const fm = action('es-forcemerge');
  const p = params(fm, { target: 'logs', poll_interval_seconds: 0.05 });
  const plan = await fm.plan(ctx, p);
  assert.equal(
    plan.summary,
    'force-merge to 1 segment 2 indices of "logs": logs-current (7 segments on 2 primaries), logs-frozen (3 segments on 1 primaries, read-only); ' +
      'left alone: logs-single-alias (write index of alias current-logs, still written)',
  );
  assert.deepEqual(writes(es), []);

  const r = await fm.run(ctx, p, AbortSignal.timeout(30_000));
  assert.match(r.summary, /^force-merged 2 indices of "logs" to 1 segment: logs-current \(4\/4 shards\), logs-frozen \(2\/2 shards\)$/);
  assert.deepEqual(
    writes(es).map((w) => [w.method, w.path, w.query]),
    [
      ['POST', '/logs-current/_forcemerge', { max_num_segments: '1', wait_for_completion: 'false', expand_wildcards: 'none' }],
      ['POST', '/logs-frozen/_forcemerge', { max_num_segments: '1', wait_for_completion: 'false', expand_wildcards: 'none' }],
    ],
  );
  // Each task was polled until it completed (2 "not yet", then done).
  const tasks = Object.keys(es.state.tasks);
  assert.equal(tasks.length, 2);
  assert.deepEqual(
    es.requests.filter((x) => x.path.startsWith('/_tasks/')).map((x) => decodeURIComponent(x.path)),
    tasks.flatMap((id) => [1, 2, 3].map(() => `/_tasks/${id}`)),
  );
  const seg = (n: string): number | undefined => es.state.indices.find((i) => i.name === n)?.segments;
  assert.equal(seg('logs-current'), 2, 'one segment per primary shard');
  assert.equal(seg('logs-frozen'), 1);
  // Written or young indices were not merged.
  assert.equal(seg('logs-today'), 4);
  assert.equal(seg('logs-single-alias'), 6);
  assert.equal(seg('.ds-logs-app-2024.03.01-000002'), 5);
  assert.equal(seg('logs-old-a'), 3, 'past retention: left to es-delete-old-indices');
  const v = await fm.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  assert.equal((await fm.plan(ctx, p)).nothingToDo, true, 'idempotent: merged indices are not selected again');
  // A label cannot make an index being written look old.
  assert.equal(Value.Check(fm.params, { target: 'logs', older_than: '1s' }), false);
  await assert.rejects(fm.plan(ctx, params(fm, { target: 'logs', older_than: '0h' })), /older_than must be at least 1h/);
});

test('es-forcemerge fails cleanly on a 5xx from the task API, naming the merge still running', async () => {
  const { es, ctx } = await setUp({ ...cluster(), forcemergePolls: 1 });
  const fm = action('es-forcemerge');
  const p = params(fm, { target: 'logs', poll_interval_seconds: 0.05 });
  es.state.fail = { status: 500, type: 'node_not_connected_exception', reason: '[node-2] Node not connected', path: /^\/_tasks\// };
  await assert.rejects(fm.run(ctx, p, AbortSignal.timeout(30_000)), /^Error: GET \/_tasks\/mock-node-1:\d+: HTTP 500 node_not_connected_exception: \[node-2\] Node not connected; the merge of logs-current \(task mock-node-1:\d+\) continues in Elasticsearch$/);
  assert.deepEqual(writes(es).map((w) => w.path), ['/logs-current/_forcemerge'], 'it stopped at the first failure');
  assert.equal((await fm.verify(ctx, p)).fixed, false);

  // A 5xx on the merge request itself: nothing started, nothing after it.
  es.state.fail = { status: 503, type: 'cluster_block_exception', reason: 'blocked by: [SERVICE_UNAVAILABLE/2/no master];', method: 'POST' };
  await assert.rejects(fm.run(ctx, p, AbortSignal.timeout(30_000)), /^Error: POST \/logs-current\/_forcemerge: HTTP 503 cluster_block_exception: blocked by: \[SERVICE_UNAVAILABLE\/2\/no master\];$/);
  assert.equal(writes(es).length, 2);

  // An abort ends the wait, not the merge, and says so.
  es.state.fail = undefined;
  es.state.forcemergePolls = 1_000_000;
  const ac = new AbortController();
  const run = fm.run(ctx, p, ac.signal);
  run.catch(() => {});
  await waitUntil('the first merge to start', () => writes(es).length >= 3, { tries: 200, intervalMs: 25 });
  ac.abort(new Error('alert resolved'));
  await assert.rejects(run, /^Error: alert resolved; the merge of logs-current \(task mock-node-1:\d+\) continues in Elasticsearch$/);
  assert.equal(writes(es).length, 3, 'the second index was not started');
});

const today = (): string => new Date().toISOString().slice(0, 10).replace(/-/g, '.');

test('es-snapshot takes the day\'s snapshot of the configured patterns, waits for it, and verifies SUCCESS', async () => {
  const { es, ctx } = await setUp({ ...cluster(), snapshotPolls: 2 });
  const snap = action('es-snapshot');
  const p = params(snap, { target: 'logs', poll_interval_seconds: 0.05 });
  const name = `housekeeper-logs-${today()}`;
  const plan = await snap.plan(ctx, p);
  assert.equal(plan.summary, `snapshot indices logs-* of "logs" to nightly/${name}`);
  assert.equal(plan.nothingToDo, false);

  const r = await snap.run(ctx, p, AbortSignal.timeout(30_000));
  assert.equal(r.summary, `snapshot nightly/${name} of "logs" taken: SUCCESS (10/10 shards)`);
  const puts = writes(es);
  assert.equal(puts.length, 1);
  assert.equal(puts[0]?.method, 'PUT');
  assert.equal(puts[0]?.path, `/_snapshot/nightly/${name}`);
  assert.deepEqual(puts[0]?.query, { wait_for_completion: 'false' });
  assert.deepEqual(puts[0]?.body, { indices: 'logs-*', ignore_unavailable: true, include_global_state: false, metadata: { taken_by: 'housekeeper', target: 'logs' } });
  assert.ok(es.state.repositories['nightly']?.[0]?.indices?.includes('logs-current'));
  const v = await snap.verify(ctx, p);
  assert.equal(v.fixed, true, v.detail);
  assert.equal(v.detail, `snapshot nightly/${name}: SUCCESS (10/10 shards)`);

  // The same day again: found, not taken twice.
  const again = await snap.plan(ctx, p);
  assert.equal(again.nothingToDo, true);
  assert.equal(again.summary, `snapshot nightly/${name} of "logs" already taken today (SUCCESS, 10/10 shards)`);
  await snap.run(ctx, p, AbortSignal.timeout(30_000));
  assert.equal(writes(es).length, 1);
});

test('es-snapshot: a failed snapshot is not fixed and the retry takes the next name; an abort leaves it running for the next run', async () => {
  const { es, ctx } = await setUp({ ...cluster(), snapshotOutcome: 'FAILED' });
  const snap = action('es-snapshot');
  const p = params(snap, { target: 'logs', poll_interval_seconds: 0.05, prefix: 'daily' });
  const name = `daily-logs-${today()}`;
  const r = await snap.run(ctx, p, AbortSignal.timeout(30_000));
  assert.match(r.summary, /: FAILED \(7\/10 shards\)$/);
  const v = await snap.verify(ctx, p);
  assert.equal(v.fixed, false);
  assert.equal(v.detail, `snapshot nightly/${name}: FAILED (7/10 shards)`);

  // The retry: the next name, left running when the run is aborted.
  es.state.snapshotOutcome = 'SUCCESS';
  es.state.snapshotPolls = 1_000_000;
  const ac = new AbortController();
  const run = snap.run(ctx, p, ac.signal);
  run.catch(() => {});
  await waitUntil('the snapshot to be requested', () => writes(es).length >= 2, { tries: 200, intervalMs: 25 });
  assert.equal(writes(es)[1]?.path, `/_snapshot/nightly/${name}.2`);
  ac.abort(new Error('shutting down'));
  await assert.rejects(run, new RegExp(`^Error: shutting down: stopped waiting for snapshot nightly/${name.replace(/\./g, '\\.')}\\.2, which continues in Elasticsearch$`));

  // The next run waits for that snapshot instead of starting another.
  const running = es.state.repositories['nightly']?.find((s) => s.name === `${name}.2`);
  assert.ok(running);
  running.pendingPolls = 2; // every GET counts: the plan's, the run's look-up, then its first poll ends it
  assert.equal((await snap.plan(ctx, p)).summary, `wait for snapshot nightly/${name}.2 of "logs", in progress`);
  const done = await snap.run(ctx, p, AbortSignal.timeout(30_000));
  assert.equal(done.summary, `snapshot nightly/${name}.2 of "logs" finished: SUCCESS (10/10 shards)`);
  assert.equal(writes(es).length, 2, 'no third snapshot');
  assert.equal((await snap.verify(ctx, p)).fixed, true);
});

test('es-snapshot fails cleanly on a 5xx and without a configured repository', async () => {
  const { es, ctx } = await setUp(cluster());
  const snap = action('es-snapshot');
  es.state.fail = { status: 500, type: 'repository_exception', reason: '[nightly] could not write', path: /^\/_snapshot\/nightly\/housekeeper-/ };
  await assert.rejects(snap.run(ctx, params(snap, { target: 'logs' }), AbortSignal.timeout(30_000)), /^Error: GET \/_snapshot\/nightly\/housekeeper-logs-[\d.]+: HTTP 500 repository_exception: \[nightly\] could not write$/);
  assert.deepEqual(writes(es), []);
  // A failure of the create itself.
  es.state.fail = { status: 500, type: 'snapshot_creation_exception', reason: 'boom', method: 'PUT' };
  await assert.rejects(snap.run(ctx, params(snap, { target: 'logs' }), AbortSignal.timeout(30_000)), /^Error: PUT \/_snapshot\/nightly\/housekeeper-logs-[\d.]+: HTTP 500 snapshot_creation_exception: boom$/);
  assert.deepEqual(es.state.repositories['nightly'], [], 'nothing was created');
  await assert.rejects(snap.plan(ctx, params(snap, { target: 'streams' })), /^Error: elasticsearch target "streams" has no snapshot_repository in config$/);
  await assert.rejects(snap.plan(ctx, params(snap, { target: 'nope' })), /^Error: no elasticsearch target named "nope" in config$/);
});

// The engine's queue and log live in Postgres: one server, started by the test that needs it.
let stateServer: PgServer | undefined;
after(async () => {
  await stateServer?.destroy();
});

const root = resolve(import.meta.dirname, '..');
const shipped = <T>(file: string, key: 'rules' | 'schedules' | 'groups'): T[] =>
  ((parse(readFileSync(resolve(root, file), 'utf8')) as Record<string, unknown>)[key] ?? []) as T[];

test('through the engine: the shipped ElasticsearchIndicesPastRetention rule runs es-delete-old-indices, a schedule runs es-forcemerge; both logged as fixed', async () => {
  stateServer = await startPostgres();
  const mock = await startElasticsearchMock(cluster());
  es = mock; // closed by afterEach
  // The shipped rule as it is, and the calendar's Sunday force merge every two seconds.
  const rule = shipped<Record<string, unknown>>('rules/backups-and-logs.yml', 'rules').find((r) => r['name'] === 'delete-indices-past-retention');
  assert.ok(rule, 'the shipped rule exists');
  assert.equal(rule['action'], 'es-delete-old-indices');
  const merge = shipped<Record<string, unknown>>('rules/calendar.yml', 'schedules').find((r) => r['name'] === 'sunday-elasticsearch-forcemerge');
  assert.ok(merge, 'the calendar has the Sunday force merge');
  assert.equal(merge['action'], 'es-forcemerge');
  const schedule = { ...merge, cron: '*/2 * * * * *', timezone: 'America/Los_Angeles' };
  // The alert's labels as alerts/elasticsearch.yml sets them, plus the metric's.
  type AlertRule = { alert?: string; labels?: Record<string, string> };
  const alertRule = shipped<{ rules: AlertRule[] }>('alerts/elasticsearch.yml', 'groups')
    .flatMap((g) => g.rules)
    .find((r) => r.alert === 'ElasticsearchIndicesPastRetention');
  assert.ok(alertRule?.labels, 'the shipped alert exists');
  const labels: Record<string, string> = { alertname: 'ElasticsearchIndicesPastRetention', ...alertRule.labels, target: 'logs', pattern: 'logs-*' };
  assert.equal(labels['remediation'], 'es-delete-old-indices');

  const inst = await startInstance(
    `
state: { url: "${stateServer.url()}" }
remediation:
  rules_dir: ${rulesDir(stringify({ rules: [rule], schedules: [schedule] }))}
elasticsearch:
  - name: logs
    url: ${mock.url}
    index_patterns: ['logs-*']
    retention: 30d
    snapshot_repository: nightly
`,
    actions,
  );
  try {
    const entries = async (q: string): Promise<Array<Record<string, unknown>>> => {
      const r = await fetch(`${inst.url}/api/remediations${q}`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(30_000) });
      assert.equal(r.status, 200);
      return ((await r.json()) as { items: Array<Record<string, unknown>> }).items;
    };
    const done = (e: Record<string, unknown>): boolean => e['outcome'] !== 'running';

    assert.equal((await inst.post(notification([{ labels }]))).status, 202);
    const deleted = await until('es-delete-old-indices logged', async () => (await entries('?action=es-delete-old-indices')).find(done));
    assert.equal(deleted['outcome'], 'fixed', JSON.stringify(deleted));
    assert.equal(deleted['trigger'], 'alert');
    assert.equal(deleted['rule'], 'delete-indices-past-retention');
    assert.equal(deleted['alertname'], 'ElasticsearchIndicesPastRetention');
    assert.equal(deleted['fingerprint'], fingerprintOf(labels));
    assert.equal(deleted['target'], 'elasticsearch:logs');
    assert.deepEqual(deleted['params'], { target: 'logs', max_indices: 50 }, 'the target came from the alert label; defaults filled in');
    assert.match(String(deleted['reason']), /^deleted 4 indices of "logs": logs-2024\.01\.01, logs-rollover-000000, logs-old-a, logs-old-b; refused: .*; verify: no deletable index of "logs" past the 30d retention remains/);

    // Three scheduled times done: the first merges, the next find nothing to do.
    const scheduled = await until('three scheduled es-forcemerge runs logged', async () => {
      const items = (await entries('?action=es-forcemerge&limit=500')).filter(done);
      return items.length >= 3 ? items : undefined;
    });
    assert.ok(scheduled.every((e) => e['trigger'] === 'schedule' && e['rule'] === 'sunday-elasticsearch-forcemerge' && e['target'] === 'elasticsearch:logs'), JSON.stringify(scheduled));
    const oldestFirst = [...scheduled].reverse();
    assert.equal(oldestFirst[0]?.['outcome'], 'fixed', JSON.stringify(oldestFirst[0]));
    assert.match(String(oldestFirst[0]?.['reason']), /^force-merged 2 indices of "logs" to 1 segment: logs-current \(4\/4 shards\), logs-frozen \(2\/2 shards\); verify: every index of "logs" no longer written has 1 segment per primary shard$/);
    for (const e of oldestFirst.slice(1)) {
      assert.equal(e['outcome'], 'skipped', JSON.stringify(e));
      assert.match(String(e['reason']), /^nothing to do: no index of "logs" to force-merge/);
    }
    const times = scheduled.map((e) => Date.parse(String(e['starts_at'])));
    assert.equal(new Set(times).size, times.length, `no scheduled time ran twice: ${JSON.stringify(scheduled.map((e) => e['starts_at']))}`);
    for (const t of times) assert.equal(t % 2_000, 0, 'each run is one of the cron\'s times');

    // The stand-in saw exactly the old indices deleted, by name, and the two merges; nothing else written.
    // The alert's run and the schedule's interleave as the queue decides: each in its own order.
    const byMethod = (m: string): unknown[] => writes(mock).filter((w) => w.method === m).map((w) => [w.path, w.query]);
    assert.deepEqual(
      byMethod('DELETE'),
      [
        ['/logs-2024.01.01', { expand_wildcards: 'none' }],
        ['/logs-rollover-000000', { expand_wildcards: 'none' }],
        ['/logs-old-a', { expand_wildcards: 'none' }],
        ['/logs-old-b', { expand_wildcards: 'none' }],
      ],
      'exactly the old indices, each by name, once',
    );
    assert.deepEqual(
      byMethod('POST'),
      [
        ['/logs-current/_forcemerge', { max_num_segments: '1', wait_for_completion: 'false', expand_wildcards: 'none' }],
        ['/logs-frozen/_forcemerge', { max_num_segments: '1', wait_for_completion: 'false', expand_wildcards: 'none' }],
      ],
      'each merge requested once',
    );
    assert.equal(writes(mock).length, 6, `nothing else written: ${JSON.stringify(writes(mock).map((w) => [w.method, w.path]))}`);
    assert.deepEqual(names(mock), AFTER_RETENTION_DELETE);
    // The alert's episode ran once.
    assert.equal((await entries('?rule=delete-indices-past-retention')).length, 1);
  } finally {
    await inst.close();
  }
});
