import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import type { AnyAction } from '../src/actions/action.ts';
import { value } from './helpers/service.ts';
import {
  countingAction,
  notification,
  prepareCountingDb,
  rulesDir,
  startInstance,
  TOKEN,
  until,
  type Instance,
} from './helpers/remediation.ts';
import { elapse } from './helpers/wait.ts';

// The webhook and the engine against a real Postgres state database, with an action whose
// every run is a row in a real table, so "ran once" is counted, not assumed.

let pgs: PgServer;
let admin: pg.Pool;
let action: AnyAction;
let dbCounter = 0;
const open: Instance[] = [];

before(async () => {
  // Every instance stays open until the end (pg-boss pools of 10 plus the counting pool):
  // Postgres's default 100 connections run out when a slow machine keeps old ones around.
  pgs = await startPostgres({ settings: { max_connections: '300' } });
  admin = new pg.Pool({ connectionString: pgs.url({ db: 'app' }), max: 3 });
  admin.on('error', () => {});
  await prepareCountingDb(pgs.url({ db: 'app' }));
  action = countingAction(pgs.url({ db: 'app' }));
});

after(async () => {
  for (const i of open) await i.close().catch(() => {});
  await admin?.end();
  await pgs?.destroy();
});

/** A fresh state database per test, so queues and logs do not mix. */
async function stateDb(): Promise<string> {
  const name = `state_${++dbCounter}`;
  await admin.query(`CREATE DATABASE ${name}`);
  return pgs.url({ db: name });
}

const RULES = `
rules:
  - name: count-it
    matchers: ['alertname="TestAlert"', 'severity=~"warning|critical"']
    action: test-count
    params: { target: "{{ $labels.target }}" }
    cooldown: 1h
    max_attempts: 1
`;

async function instance(stateUrl: string, rules = RULES, extra = '', name = 'r1', remediationExtra = ''): Promise<Instance> {
  const i = await startInstance(
    `
state: { url: "${stateUrl}" }
remediation:
  rules_dir: ${rulesDir(rules)}
  replica_name: ${name}
  ${remediationExtra}
${extra}
`,
    [action],
  );
  open.push(i);
  return i;
}

async function runs(target: string): Promise<number> {
  return (await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM runs WHERE target = $1', [target])).rows[0]?.n ?? 0;
}

async function log(i: Instance, query = ''): Promise<Array<Record<string, unknown>>> {
  const r = await fetch(`${i.url}/api/remediations${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200);
  return ((await r.json()) as { items: Array<Record<string, unknown>> }).items;
}

test('auth: none and wrong are 401, the bearer token is accepted', async () => {
  const i = await instance(await stateDb());
  const body = notification([{ labels: { alertname: 'Other', target: 'x' } }]);
  assert.equal((await i.post(body, {})).status, 401);
  assert.equal((await i.post(body, { authorization: 'Bearer wrong-token-wrong-token' })).status, 401);
  assert.equal((await i.post(body, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` })).status, 401);
  const ok = await i.post(body);
  assert.equal(ok.status, 202);
  const api = await fetch(`${i.url}/api/remediations`);
  assert.equal(api.status, 401, 'the log is protected like the webhook');
  const m = await (await fetch(`${i.url}/metrics`)).text();
  assert.equal(value(m, 'housekeeper_webhook_notifications_total', { result: 'unauthorized' }), 3, 'only the webhook counts refusals');
});

test('basic auth as an option', async () => {
  const url = await stateDb();
  const i = await startInstance(
    `
state: { url: "${url}" }
webhook: { basic_auth: { username: am, password: "s3cret-basic-pass" } }
remediation: { rules_dir: ${rulesDir(RULES)} }
`,
    [action],
    {},
  );
  open.push(i);
  const body = notification([{ labels: { alertname: 'Other' } }]);
  assert.equal((await i.post(body, { authorization: `Basic ${Buffer.from('am:s3cret-basic-pass').toString('base64')}` })).status, 202);
  assert.equal((await i.post(body, { authorization: `Basic ${Buffer.from('am:nope').toString('base64')}` })).status, 401);
});

test('malformed, invalid and oversized bodies are 4xx naming the problem', async () => {
  const i = await instance(await stateDb(), RULES, 'webhook: { max_body: 2048 }');
  const bad = await i.post('{"version": "4", ');
  assert.equal(bad.status, 400);
  const noAlerts = await i.post({ ...notification([]), alerts: undefined });
  assert.equal(noAlerts.status, 400);
  assert.match(String(noAlerts.json['error']), /alerts/);
  const badStatus = notification([{ labels: { alertname: 'TestAlert' } }]);
  (badStatus['alerts'] as Array<Record<string, unknown>>)[0]!['status'] = 'burning';
  const r = await i.post(badStatus);
  assert.equal(r.status, 400);
  assert.match(String(r.json['error']), /alerts\/0\/status/);
  const v3 = await i.post({ ...notification([]), version: '3' });
  assert.equal(v3.status, 400);
  assert.match(String(v3.json['error']), /version/);
  const badTime = notification([{ labels: { alertname: 'TestAlert' }, startsAt: 'yesterday' }]);
  assert.match(String((await i.post(badTime)).json['error']), /alerts\[0\]\.startsAt/);
  const big = notification(Array.from({ length: 40 }, (_, k) => ({ labels: { alertname: 'TestAlert', k: String(k) } })));
  assert.equal((await i.post(big)).status, 413);
});

test('each alert by its own status: a resolved alert in a firing group never acts', async () => {
  const i = await instance(await stateDb());
  const r = await i.post(
    notification([
      { status: 'resolved', labels: { alertname: 'TestAlert', severity: 'warning', target: 'res-a' } },
      { status: 'firing', labels: { alertname: 'TestAlert', severity: 'warning', target: 'fire-a' } },
      { status: 'firing', labels: { alertname: 'TestAlert', severity: 'info', target: 'unmatched-a' } },
    ], 'firing'),
  );
  assert.equal(r.status, 202);
  assert.deepEqual(r.json['results'], { resolved: 1, queued: 1, unmatched: 1 });
  await until('fire-a ran', async () => (await runs('fire-a')) === 1);
  await until('fire-a logged as fixed', async () => (await log(i, '?rule=count-it')).find((x) => x['target'] === 'test:fire-a')?.['outcome'] === 'fixed');
  assert.equal(await runs('res-a'), 0);
  assert.equal(await runs('unmatched-a'), 0);
});

test('3 replicas sharing the state, each delivered the notification twice at once: the action runs once', async () => {
  const url = await stateDb();
  const replicas = [await instance(url, RULES, '', 'a'), await instance(url, RULES, '', 'b'), await instance(url, RULES, '', 'c')];
  const body = notification([{ labels: { alertname: 'TestAlert', severity: 'critical', target: 'dedupe' } }]);
  const answers = await Promise.all(replicas.flatMap((r) => [r.post(body), r.post(body)]));
  assert.deepEqual(answers.map((a) => a.status), [202, 202, 202, 202, 202, 202]);
  const queued = answers.filter((a) => (a.json['results'] as Record<string, number>)['queued'] === 1).length;
  assert.equal(queued, 1, 'exactly one delivery stored the job; the others were duplicates');
  await until('the run', async () => (await runs('dedupe')) >= 1);
  // Repeats after the run (Alertmanager's repeat_interval) are still the same episode.
  await replicas[1]!.post(body);
  await until('the log entry', async () => (await log(replicas[0]!, '?target=test:dedupe&outcome=fixed')).length === 1);
  await elapse(2_000, 'time for a duplicate run to show, if the repeat made one');
  assert.equal(await runs('dedupe'), 1);
  const entries = await log(replicas[2]!, '?target=test:dedupe');
  assert.equal(entries.length, 1);
  assert.ok(['a', 'b', 'c'].includes(String(entries[0]?.['replica'])));
  assert.equal(entries[0]?.['fingerprint'], (body['alerts'] as Array<{ fingerprint: string }>)[0]?.fingerprint);
});

test('cooldown per rule and target: a new episode soon after a run waits', async () => {
  const i = await instance(await stateDb());
  await i.post(notification([{ labels: { alertname: 'TestAlert', severity: 'warning', target: 'cool' }, startsAt: '2026-11-28T10:00:00Z' }]));
  await until('first run', async () => (await runs('cool')) === 1);
  await i.post(notification([{ labels: { alertname: 'TestAlert', severity: 'warning', target: 'cool' }, startsAt: '2026-11-28T11:00:00Z' }]));
  const deferred = await until('deferral', async () => (await log(i, '?target=test:cool&outcome=deferred'))[0]);
  assert.match(String(deferred['reason']), /cooldown of count-it on test:cool/);
  assert.equal(await runs('cool'), 1);
});

test('the global budget defers actions past it', async () => {
  const j = await instance(await stateDb(), RULES, '', 'r1', 'budget: { max_actions: 2, per: 1h }');
  await j.post(notification(['b1', 'b2', 'b3'].map((t) => ({ labels: { alertname: 'TestAlert', severity: 'warning', target: t } }))));
  await until('two runs', async () => (await runs('b1')) + (await runs('b2')) + (await runs('b3')) === 2);
  const deferred = await until('a deferral', async () => (await log(j, '?outcome=deferred'))[0]);
  assert.match(String(deferred['reason']), /global budget of 2 actions/);
  await elapse(1_500, 'time for a third run to show, if the budget let one through');
  assert.equal((await runs('b1')) + (await runs('b2')) + (await runs('b3')), 2);
});

test('delay: an alert resolved before its delay is up never acts; its job is cancelled', async () => {
  const rules = RULES.replace('cooldown: 1h', 'cooldown: 1h\n    delay: 3s');
  const i = await instance(await stateDb(), rules);
  const alert = { labels: { alertname: 'TestAlert', severity: 'warning', target: 'delayed' }, startsAt: '2026-11-28T09:00:00Z' };
  assert.deepEqual((await i.post(notification([alert]))).json['results'], { queued: 1 });
  assert.deepEqual((await i.post(notification([{ ...alert, status: 'resolved' }], 'resolved'))).json['results'], { cancelled: 1 });
  await elapse(4_500, 'the 3 s delay passes: the cancelled job must not run');
  assert.equal(await runs('delayed'), 0);
  // Still firing after the delay: it runs.
  const other = { labels: { alertname: 'TestAlert', severity: 'warning', target: 'delayed-2' } };
  await i.post(notification([other]));
  await until('delayed run', async () => (await runs('delayed-2')) === 1);
});

test('unfixed outcomes open the rule\'s circuit; then it stops acting and says so', async () => {
  await admin.query(`INSERT INTO verdicts VALUES ('broken', false) ON CONFLICT (target) DO UPDATE SET fixed = false`);
  const rules = RULES.replace('cooldown: 1h', 'cooldown: 0s');
  const j = await instance(await stateDb(), rules, '', 'r1', 'circuit: { failures: 2, reset_after: 6h }');
  for (const [n, at] of ['2026-11-28T01:00:00Z', '2026-11-28T02:00:00Z'].entries()) {
    await j.post(notification([{ labels: { alertname: 'TestAlert', severity: 'warning', target: 'broken' }, startsAt: at }]));
    await until(`run ${n + 1}`, async () => (await log(j, '?target=test:broken&outcome=not_fixed')).length === n + 1);
  }
  await j.post(notification([{ labels: { alertname: 'TestAlert', severity: 'warning', target: 'broken' }, startsAt: '2026-11-28T03:00:00Z' }]));
  const skipped = await until('circuit skip', async () => (await log(j, '?target=test:broken&outcome=skipped'))[0]);
  assert.match(String(skipped['reason']), /circuit open/);
  assert.equal(await runs('broken'), 2);
  const m = await until('circuit metric', async () => {
    const body = await (await fetch(`${j.url}/metrics`)).text();
    return value(body, 'housekeeper_remediation_circuit_open', { rule: 'count-it' }) === 1 ? body : undefined;
  });
  assert.equal(value(m, 'housekeeper_remediations_total', { rule: 'count-it', action: 'test-count', outcome: 'not_fixed' }), 2);
  assert.ok(j.lines.some((l) => l.includes('circuit open')));
});

test('a verify that never answers fails the run at the action timeout, and the job is not held', async () => {
  const rules = RULES.replace('params: { target: "{{ $labels.target }}" }', 'params: { target: "{{ $labels.target }}", verify_hangs: true }');
  const i = await instance(await stateDb(), rules, '', 'r1', 'action_timeout: 2s');
  await i.post(notification([{ labels: { alertname: 'TestAlert', severity: 'warning', target: 'hung-verify' } }]));
  const failed = await until('the failed run', async () => (await log(i, '?target=test:hung-verify&outcome=failed'))[0]);
  assert.match(String(failed['error']), /action timed out after 2s/);
  assert.equal(await runs('hung-verify'), 1, 'the run itself happened once');
  assert.equal((await log(i, '?target=test:hung-verify&outcome=running')).length, 0, 'nothing left running');
});

test('dry run records the plan and does nothing', async () => {
  const rules = RULES.replace('max_attempts: 1', 'max_attempts: 1\n    dry_run: true');
  const i = await instance(await stateDb(), rules);
  await i.post(notification([{ labels: { alertname: 'TestAlert', severity: 'warning', target: 'dry' } }]));
  const entry = await until('dry-run entry', async () => (await log(i, '?outcome=dry_run'))[0]);
  assert.equal((entry['plan'] as { summary: string }).summary, 'count a run on dry');
  assert.equal(entry['dry_run'], true);
  assert.equal(await runs('dry'), 0);
});

test('restart with jobs queued: nothing lost, nothing run twice', async () => {
  const url = await stateDb();
  const rules = RULES.replace('cooldown: 1h', 'cooldown: 1h\n    delay: 2s');
  const first = await instance(url, rules, '', 'first');
  await first.post(notification([{ labels: { alertname: 'TestAlert', severity: 'warning', target: 'restart' } }]));
  await first.close();
  open.splice(open.indexOf(first), 1);
  assert.equal(await runs('restart'), 0, 'the job was still waiting when the replica stopped');
  const second = await instance(url, rules, '', 'second');
  await until('run after restart', async () => (await runs('restart')) === 1);
  await elapse(1_500, 'time for a second run to show, if the restart queued one twice');
  assert.equal(await runs('restart'), 1);
  assert.equal((await log(second, '?target=test:restart'))[0]?.['replica'], 'second');
});

test('a label value carrying SQL or shell text never reaches the action', async () => {
  const i = await instance(await stateDb());
  const evil = "x'; DROP TABLE runs; --";
  const r = await i.post(notification([{ labels: { alertname: 'TestAlert', severity: 'warning', target: evil } }, { labels: { alertname: 'TestAlert', severity: 'warning', target: '$(touch /tmp/pwned)' } }]));
  assert.equal(r.status, 202);
  assert.deepEqual(r.json['results'], { invalid_params: 2 });
  const skipped = await log(i, '?outcome=skipped');
  assert.equal(skipped.length, 2);
  assert.match(String(skipped[0]?.['reason']), /invalid params: params\.target/);
  assert.equal((await admin.query("SELECT to_regclass('runs') IS NOT NULL AS ok")).rows[0].ok, true);
});

test('the log API filters and pages', async () => {
  const i = await instance(await stateDb(), RULES.replace('cooldown: 1h', 'cooldown: 0s'));
  await i.post(notification(['p1', 'p2', 'p3'].map((t) => ({ labels: { alertname: 'TestAlert', severity: 'warning', target: t } }))));
  await until('three runs', async () => (await log(i, '?outcome=fixed')).length === 3);
  const page1 = (await (await fetch(`${i.url}/api/remediations?limit=2`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { items: Array<{ id: number }>; next: string };
  assert.equal(page1.items.length, 2);
  assert.match(page1.next, /^before=\d+$/);
  const page2 = (await (await fetch(`${i.url}/api/remediations?limit=2&${page1.next}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { items: Array<{ id: number }>; next: string | null };
  assert.equal(page2.items.length, 1);
  assert.ok(page2.items[0]!.id < page1.items[1]!.id);
  assert.equal(page2.next, null);
  const bad = await fetch(`${i.url}/api/remediations?limit=100000`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(bad.status, 400);
});

test('without a state database: embedded state on disk survives a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hk-state-'));
  const rules = RULES.replace('cooldown: 1h', 'cooldown: 1h\n    delay: 2s');
  const make = (): Promise<Instance> => startInstance(`
state: { path: ${dir} }
remediation: { rules_dir: ${rulesDir(rules)} }
`, [action]);
  const a = await make();
  await a.post(notification([{ labels: { alertname: 'TestAlert', severity: 'warning', target: 'embedded' } }]));
  await a.close();
  const b = await make();
  open.push(b);
  await until('embedded run', async () => (await runs('embedded')) === 1);
  // The run row is written before verify; its outcome follows.
  await until('embedded run logged as fixed', async () => (await log(b, '?target=test:embedded'))[0]?.['outcome'] === 'fixed');
});

test('a schedule fires once per scheduled time with two replicas running', async () => {
  const url = await stateDb();
  const rules = `
schedules:
  - name: every-three-seconds
    cron: "*/3 * * * * *"
    timezone: America/Los_Angeles
    action: test-count
    params: { target: sched }
`;
  const a = await instance(url, rules, '', 'a');
  const b = await instance(url, rules, '', 'b');
  const entries = await until('three scheduled runs', async () => {
    const items = await log(a, '?target=test:sched&outcome=fixed');
    return items.length >= 3 ? items : undefined;
  });
  await a.close();
  await b.close();
  open.splice(open.indexOf(a), 1);
  open.splice(open.indexOf(b), 1);
  const all = await (async () => {
    const c = await instance(url, '', '', 'reader');
    const items = await log(c, '?target=test:sched&limit=500');
    await c.close();
    open.splice(open.indexOf(c), 1);
    return items;
  })();
  const ran = all.filter((e) => e['outcome'] === 'fixed');
  const times = ran.map((e) => String(e['starts_at']));
  assert.equal(new Set(times).size, times.length, 'no scheduled time ran twice');
  assert.equal(await runs('sched'), ran.length, 'every run is in the log once');
  assert.ok(entries.every((e) => e['trigger'] === 'schedule'));
  for (const t of times) assert.equal(new Date(t).getUTCSeconds() % 3, 0);
});

test('replicas restarting around scheduled times: each time runs once, none missed while one replica ticks, the last missed one caught up after all were down', async () => {
  const url = await stateDb();
  const rules = `
schedules:
  - name: every-two-seconds
    cron: "*/2 * * * * *"
    timezone: America/Los_Angeles
    action: test-count
    params: { target: restarts }
`;
  const stop = async (i: Instance): Promise<void> => {
    await i.close();
    open.splice(open.indexOf(i), 1);
  };
  const fixedTimes = async (): Promise<number[]> => {
    const reader = await instance(url, '', '', 'reader');
    const items = await log(reader, '?target=test:restarts&limit=500');
    await stop(reader);
    return items.filter((e) => e['outcome'] === 'fixed').map((e) => Date.parse(String(e['starts_at']))).sort((x, y) => x - y);
  };
  const b = await instance(url, rules, '', 'b');
  let a = await instance(url, rules, '', 'a');
  await until('a first scheduled run', async () => (await runs('restarts')) >= 1);
  // a restarts twice while b keeps ticking: each new a catches up the latest time it missed,
  // which b has already queued.
  for (let k = 0; k < 2; k++) {
    await stop(a);
    await elapse(2_500, 'a scheduled time passes while a is down');
    a = await instance(url, rules, '', 'a');
    await elapse(2_500, 'a scheduled time passes with a back');
  }
  await stop(a);
  await stop(b);
  const whileOneTicked = await fixedTimes();
  assert.ok(whileOneTicked.length >= 4, `runs while b ticked: ${whileOneTicked.length}`);
  assert.equal(new Set(whileOneTicked).size, whileOneTicked.length, 'no scheduled time ran twice');
  assert.equal(await runs('restarts'), whileOneTicked.length, 'every run is in the log once');
  for (let i = 1; i < whileOneTicked.length; i++) {
    assert.equal((whileOneTicked[i] as number) - (whileOneTicked[i - 1] as number), 2_000, 'no scheduled time was skipped while b ran');
  }
  // Every replica down across at least one scheduled time; one comes back within the catch-up horizon.
  const downAt = Date.now();
  await elapse(3_000, 'a scheduled time passes with every replica down');
  const c = await instance(url, rules, '', 'c');
  const upAt = Date.now();
  const missed = async (): Promise<boolean> =>
    (await log(c, '?target=test:restarts&outcome=fixed&limit=500')).some((e) => {
      const t = Date.parse(String(e['starts_at']));
      return t > downAt && t <= upAt;
    });
  await until('the missed run', missed);
  await stop(c);
  const after = await fixedTimes();
  const caughtUp = after.filter((t) => t > downAt && t <= upAt);
  assert.equal(caughtUp.length, 1, 'only the latest time missed while all were down runs, once');
  assert.equal(new Set(after).size, after.length, 'still no scheduled time ran twice');
  assert.equal(await runs('restarts'), after.length);
});

test('a replica without the rule hands the job back (a rolling deploy); a replica with it runs it once', async () => {
  const url = await stateDb();
  const rules = RULES.replace('cooldown: 1h', 'cooldown: 1h\n    delay: 2s');
  const newer = await instance(url, rules, '', 'newer');
  const alert = { labels: { alertname: 'TestAlert', severity: 'warning', target: 'handed-back' } };
  assert.deepEqual((await newer.post(notification([alert]))).json['results'], { queued: 1 });
  await newer.close();
  open.splice(open.indexOf(newer), 1);
  // Only a replica that has no rules is running when the job comes due.
  const older = await instance(url, '', '', 'older');
  await until('the hand-back', async () => older.lines.some((l) => l.includes('handed back for a replica that has it')));
  assert.equal(await runs('handed-back'), 0);
  await older.close();
  open.splice(open.indexOf(older), 1);
  const newer2 = await instance(url, rules, '', 'newer-2');
  await until('the run on a replica with the rule', async () => (await runs('handed-back')) === 1);
  await elapse(6_000, 'another hand-back period: nothing runs twice');
  assert.equal(await runs('handed-back'), 1);
  assert.ok(!older.lines.some((l) => l.includes('job dropped')), 'nothing dropped');
  const fixed = await log(newer2, '?target=test:handed-back&outcome=fixed');
  assert.equal(fixed.length, 1);
});

test('rules are checked at boot: unknown action, bad matcher, bad param, bad cron name file and field', async () => {
  const { loadRules, ruleMatches } = await import('../src/remediation/rules.ts');
  const bad = (yaml: string): string => {
    try {
      loadRules(rulesDir(yaml), [action]);
    } catch (err) {
      return (err as Error).message;
    }
    return assert.fail('accepted');
  };
  assert.match(bad('rules:\n  - { name: r, matchers: [\'alertname="A"\'], action: nope }\n'), /rules\.yml: rules\[0\] \(r\)\.action: unknown action "nope" \(known: test-count\)/);
  assert.match(bad('rules:\n  - { name: r, matchers: [\'alertname=~"("\'], action: test-count, params: { target: x } }\n'), /rules\[0\] \(r\)\.matchers\[0\]: bad regular expression/);
  assert.match(bad('rules:\n  - { name: r, matchers: [\'severity="x"\'], action: test-count, params: { target: x } }\n'), /needs an alertname matcher/);
  // An entry may hold a list, as an Alertmanager route's matchers lines may; errors name the entry.
  assert.match(bad('rules:\n  - { name: r, matchers: [\'alertname="A"\', \'severity="x", team=~"a|("\'], action: test-count, params: { target: x } }\n'), /rules\[0\] \(r\)\.matchers\[1\]: bad regular expression/);
  assert.match(bad('rules:\n  - { name: r, matchers: [\'{severity="x", team="y"}\'], action: test-count, params: { target: x } }\n'), /needs an alertname matcher/);
  const [listed] = loadRules(rulesDir('rules:\n  - { name: r, matchers: [\'{alertname="A", severity=~"(?i)crit"}\'], action: test-count, params: { target: x } }\n'), [action]);
  assert.ok(listed);
  assert.deepEqual(listed.matchers.map((m) => m.name), ['alertname', 'severity']);
  assert.equal(ruleMatches(listed, { alertname: 'A', severity: 'CRIT' }), true);
  assert.equal(ruleMatches(listed, { alertname: 'A', severity: 'warning' }), false);
  assert.match(bad('rules:\n  - { name: r, matchers: [\'alertname="A"\'], action: test-count, params: { target: "bad target!" } }\n'), /rules\[0\] \(r\)\.params\.target: Expected string to match/);
  assert.match(bad('rules:\n  - { name: r, matchers: [\'alertname="A"\'], action: test-count, params: { target: "{{ .Labels.x }}" } }\n'), /only template form is \{\{ \$labels\.NAME \}\}/);
  assert.match(bad('schedules:\n  - { name: s, cron: "every day", action: test-count, params: { target: x } }\n'), /schedules\[0\] \(s\)\.cron: bad cron expression/);
  assert.match(bad('rules:\n  - { name: r, matchers: [\'alertname="A"\'], action: test-count, params: { target: x }, delya: 2m }\n'), /rules\.yml: rules\[0\]\.delya \(line 2\): unknown key "delya"/);
  assert.match(bad('rules:\n  - { name: r, matchers: [\'alertname="A"\'], action: test-count, params: { target: x }, windows: [{ days: [sun], start: "25:00", end: "05:00", timezone: America/Los_Angeles }] }\n'), /windows\[0\]: "25:00" is not a time of day/);
});

test('outside its maintenance window a job waits for the next one, or is skipped with the reason', async () => {
  // A one-minute window two hours from now, every day: certainly not now.
  const { localTime } = await import('../src/remediation/windows.ts');
  const { minute } = localTime(new Date(), 'America/Los_Angeles');
  const hhmm = (m: number): string => `${String(Math.floor((m % 1440) / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  const window = `[{ days: [sun, mon, tue, wed, thu, fri, sat], start: "${hhmm(minute + 120)}", end: "${hhmm(minute + 121)}", timezone: America/Los_Angeles }]`;
  const rules = `
rules:
  - name: waits
    matchers: ['alertname="TestAlert"', 'mode="wait"']
    action: test-count
    params: { target: "{{ $labels.target }}" }
    windows: ${window}
  - name: skips
    matchers: ['alertname="TestAlert"', 'mode="skip"']
    action: test-count
    params: { target: "{{ $labels.target }}" }
    windows: ${window}
    outside_window: skip
`;
  const i = await instance(await stateDb(), rules);
  await i.post(notification([
    { labels: { alertname: 'TestAlert', mode: 'wait', target: 'win-wait' } },
    { labels: { alertname: 'TestAlert', mode: 'skip', target: 'win-skip' } },
  ]));
  const deferred = await until('deferral', async () => (await log(i, '?rule=waits&outcome=deferred'))[0]);
  assert.match(String(deferred['reason']), /outside its maintenance windows; waits for \d{4}-\d\d-\d\dT/);
  const skipped = await until('skip', async () => (await log(i, '?rule=skips&outcome=skipped'))[0]);
  assert.equal(skipped['reason'], 'outside its maintenance windows');
  assert.equal((await runs('win-wait')) + (await runs('win-skip')), 0);
});

test('each remediation posts a Grafana annotation; a failing Grafana never fails the action', async (t) => {
  const { createServer } = await import('node:http');
  const received: Array<{ auth: string | undefined; body: { text: string; tags: string[]; time: number } }> = [];
  let status = 200;
  const grafana = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/api/annotations') received.push({ auth: req.headers.authorization, body: JSON.parse(data) });
      res.writeHead(status, { 'content-type': 'application/json' }).end('{"id":1}');
    });
  });
  await new Promise<void>((r) => grafana.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => grafana.close(r)));
  const port = (grafana.address() as import('node:net').AddressInfo).port;
  const i = await instance(await stateDb(), RULES, `grafana: { url: "http://127.0.0.1:${port}", token: "grafana-token-123", tags: [housekeeper, demo] }`);
  await i.post(notification([{ labels: { alertname: 'TestAlert', severity: 'warning', target: 'annotated' } }]));
  const a = await until('an annotation', async () => received[0]);
  assert.equal(a.auth, 'Bearer grafana-token-123');
  assert.match(a.body.text, /^test-count on test:annotated \(count-it\): fixed/);
  for (const tag of ['housekeeper', 'demo', 'rule:count-it', 'action:test-count', 'outcome:fixed', 'target:test:annotated']) assert.ok(a.body.tags.includes(tag), tag);
  status = 500;
  await i.post(notification([{ labels: { alertname: 'TestAlert', severity: 'warning', target: 'grafana-down' } }]));
  await until('second annotation attempt', async () => received.length === 2);
  const entry = await until('the run logged', async () => (await log(i, '?target=test:grafana-down'))[0]);
  assert.equal(entry['outcome'], 'fixed', 'Grafana answering 500 does not fail the action');
  assert.ok(i.lines.some((l) => l.includes('grafana annotation refused')));
  assert.ok(!i.lines.some((l) => l.includes('grafana-token-123')), 'the token never reaches the log');
});
