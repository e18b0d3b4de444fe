import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { defineAction, type AnyAction, type Plan } from '../src/actions/action.ts';
import { budgetSpentUntil } from '../src/remediation/gates/budget.ts';
import { circuitVerdict } from '../src/remediation/gates/circuit.ts';
import { cooldownVerdict } from '../src/remediation/gates/cooldown.ts';
import { sequence, type Gate, type Verdict } from '../src/remediation/gates/gate.ts';
import { orphanVerdict } from '../src/remediation/gates/orphan.ts';
import { planGate, planVerdict } from '../src/remediation/gates/plan.ts';
import { resolvedVerdict } from '../src/remediation/gates/resolved.ts';
import { windowGate, windowVerdict } from '../src/remediation/gates/window.ts';
import type { JobData } from '../src/remediation/jobs.ts';
import { loadRules, type Rule } from '../src/remediation/rules.ts';
import type { Run } from '../src/remediation/run.ts';
import { createTargets } from '../src/targets/index.ts';
import { configFrom, memoryLogger } from './helpers/config.ts';
import { rulesDir } from './helpers/remediation.ts';

// Each gate's decision, without a database: the gates read state, then decide with a
// function of what they read. The engine's own tests (remediation, loop) run them for real.

/** An action whose plan the test sets: `plan` answers this, or throws it when it is an Error. */
function planAction(idempotent: boolean, answer: () => Plan): AnyAction {
  return defineAction({
    name: idempotent ? 'gate-test' : 'gate-test-once',
    description: 'test action: plans what the test says',
    params: Type.Object({ target: Type.String() }),
    idempotent,
    disruptive: false,
    targetKey: (p) => `gate:${p.target}`,
    plan: async () => answer(),
    run: async () => ({ summary: 'ran' }),
    verify: async () => ({ fixed: true, detail: 'fixed' }),
  });
}

let planned: () => Plan = () => ({ summary: 'would act' });
const actions = [planAction(true, () => planned()), planAction(false, () => planned())];
const rules = loadRules(
  rulesDir(`
rules:
  - name: sunday-nights
    matchers: ['alertname="GateTest"']
    action: gate-test
    params: { target: "{{ $labels.target }}" }
    cooldown: 30m
    windows: [{ days: [sun], start: "01:00", end: "05:00", timezone: America/Los_Angeles }]
  - name: sunday-nights-or-never
    matchers: ['alertname="GateTest"']
    action: gate-test
    params: { target: "{{ $labels.target }}" }
    windows: [{ days: [sun], start: "01:00", end: "05:00", timezone: America/Los_Angeles }]
    outside_window: skip
  - name: once-only
    matchers: ['alertname="GateTest"']
    action: gate-test-once
    params: { target: "{{ $labels.target }}" }
    dry_run: true
`),
  actions,
);

function rule(name: string): Rule {
  const r = rules.find((x) => x.name === name);
  assert.ok(r, `rule ${name} loaded`);
  return r;
}

function runOf(ruleName: string, data: Partial<JobData> = {}): Run {
  return {
    jobId: '00000000-0000-4000-8000-000000000001',
    rule: rule(ruleName),
    data: {
      trigger: 'alert', episode: '00000000-0000-4000-8000-000000000002', rule: ruleName, alertname: 'GateTest', fingerprint: 'f1',
      startsAt: '2026-11-28T10:00:00.000Z', params: { target: 'a' }, target: 'gate:a', attempt: 1, seq: 0, ...data,
    },
  };
}

/** The verdict's kind and what it says, for one assertion per case. */
function said(v: Verdict): Record<string, unknown> {
  switch (v.kind) {
    case 'continue':
      return { kind: 'continue' };
    case 'record':
      return { kind: 'record', outcome: v.outcome, reason: v.reason };
    case 'defer':
      return { kind: 'defer', until: v.until.toISOString(), reason: v.reason };
    case 'fail':
      return { kind: 'fail', error: v.error instanceof Error ? v.error.message : String(v.error) };
  }
}

const skipped = (reason: string): Record<string, unknown> => ({ kind: 'record', outcome: 'skipped', reason });

test('orphan: an interrupted run is repeated only for an idempotent action', () => {
  assert.deepEqual(said(orphanVerdict(runOf('once-only'), 1)), skipped('interrupted run of a non-idempotent action is not repeated'));
  assert.deepEqual(said(orphanVerdict(runOf('sunday-nights'), 1)), { kind: 'continue' });
  assert.deepEqual(said(orphanVerdict(runOf('once-only'), 0)), { kind: 'continue' });
});

test('resolved: an episode resolved while its job waited is skipped', () => {
  assert.deepEqual(said(resolvedVerdict(runOf('sunday-nights'), 'resolved')), skipped('alert resolved before the job ran'));
  assert.deepEqual(said(resolvedVerdict(runOf('sunday-nights'), 'firing')), { kind: 'continue' });
  assert.deepEqual(said(resolvedVerdict(runOf('sunday-nights'), undefined)), { kind: 'continue' });
});

test('circuit: an open circuit skips the run and says a human must look', () => {
  assert.deepEqual(said(circuitVerdict(runOf('sunday-nights'), true)), skipped('circuit open: repeated failures; a human must look'));
  assert.deepEqual(said(circuitVerdict(runOf('sunday-nights'), false)), { kind: 'continue' });
});

test('window: inside it runs, outside it waits for the next start or is skipped as the rule says', async () => {
  const saturdayNoon = new Date('2026-11-28T20:00:00Z'); // 12:00 PST
  const sundayNight = new Date('2026-11-29T09:30:00Z'); // 01:30 PST
  assert.deepEqual(said(windowVerdict(runOf('sunday-nights'), sundayNight)), { kind: 'continue' });
  assert.deepEqual(said(windowVerdict(runOf('sunday-nights'), saturdayNoon)), {
    kind: 'defer',
    until: '2026-11-29T09:00:00.000Z',
    reason: 'outside its maintenance windows; waits for 2026-11-29T09:00:00.000Z',
  });
  assert.deepEqual(said(windowVerdict(runOf('sunday-nights-or-never'), saturdayNoon)), skipped('outside its maintenance windows'));
  assert.deepEqual(said(windowVerdict(runOf('once-only'), saturdayNoon)), { kind: 'continue' }, 'no windows: any time');
  const never = { ...runOf('sunday-nights'), rule: { ...rule('sunday-nights'), windows: [{ days: [], startMin: 60, endMin: 300, timezone: 'America/Los_Angeles' }] } };
  assert.deepEqual(said(windowVerdict(never, saturdayNoon)), skipped('no maintenance window in the next 8 days'));
  // The gate decides at its clock's time.
  assert.deepEqual(said(await windowGate(() => sundayNight).check(runOf('sunday-nights'))), { kind: 'continue' });
  assert.equal((await windowGate(() => saturdayNoon).check(runOf('sunday-nights'))).kind, 'defer');
});

test('cooldown: a new alert episode within the cooldown of the last run waits out the rest of it', () => {
  const now = new Date('2026-11-28T10:00:00Z');
  const ago = (min: number): Date => new Date(now.getTime() - min * 60_000);
  assert.deepEqual(said(cooldownVerdict(runOf('sunday-nights'), ago(10), now)), {
    kind: 'defer',
    until: '2026-11-28T10:20:00.000Z',
    reason: 'cooldown of sunday-nights on gate:a until 2026-11-28T10:20:00.000Z',
  });
  assert.deepEqual(said(cooldownVerdict(runOf('sunday-nights'), ago(30), now)), { kind: 'continue' }, 'the cooldown is over at its end');
  assert.deepEqual(said(cooldownVerdict(runOf('sunday-nights'), null, now)), { kind: 'continue' }, 'never ran');
  assert.deepEqual(said(cooldownVerdict(runOf('sunday-nights', { seq: 1 }), ago(10), now)), { kind: 'continue' }, 'a retry is not held');
  assert.deepEqual(said(cooldownVerdict(runOf('sunday-nights', { trigger: 'schedule' }), ago(10), now)), { kind: 'continue' }, 'the calendar is not held');
});

test('plan: a dry run or nothing to do stops at the plan; otherwise the run carries it on; a plan that throws fails the attempt', async () => {
  const plan: Plan = { summary: 'flush 12 keys' };
  assert.deepEqual(said(planVerdict(runOf('sunday-nights'), plan, true)), { kind: 'record', outcome: 'dry_run', reason: 'dry run: flush 12 keys' });
  assert.deepEqual(said(planVerdict(runOf('sunday-nights'), { summary: 'no keys', nothingToDo: true }, false)), skipped('nothing to do: no keys'));
  const go = planVerdict(runOf('sunday-nights'), plan, false);
  assert.equal(go.kind, 'continue');
  assert.deepEqual(go.kind === 'continue' ? go.run.plan : undefined, plan);

  const { log } = memoryLogger();
  const config = configFrom('{}');
  const ctx = { targets: createTargets(config, log), config, log };
  planned = () => plan;
  assert.equal((await planGate(ctx, false).check(runOf('sunday-nights'))).kind, 'continue');
  assert.equal((await planGate(ctx, true).check(runOf('sunday-nights'))).kind, 'record', 'the global dry run wins');
  assert.equal((await planGate(ctx, false).check(runOf('once-only'))).kind, 'record', "the rule's dry run");
  planned = () => {
    throw new Error('cannot reach the server');
  };
  assert.deepEqual(said(await planGate(ctx, false).check(runOf('sunday-nights'))), { kind: 'fail', error: 'cannot reach the server' });
});

test('budget: spent once the window holds max_actions runs, until its oldest run leaves it', () => {
  const budget = { maxActions: 3, perMs: 3_600_000 };
  const oldest = new Date('2026-11-28T09:15:00Z');
  const now = Date.parse('2026-11-28T10:00:00Z');
  assert.equal(budgetSpentUntil(budget, 2, oldest, now), undefined);
  assert.equal(budgetSpentUntil(budget, 3, oldest, now)?.toISOString(), '2026-11-28T10:15:00.000Z');
  assert.equal(budgetSpentUntil(budget, 3, null, now)?.toISOString(), '2026-11-28T11:00:00.000Z');
});

test('the pipeline: gates in order, each sees what the last learned; the first that stops the run decides', async () => {
  const seen: string[] = [];
  const gate = (name: string, decide: (run: Run) => Verdict): Gate => ({
    name,
    async check(run) {
      seen.push(`${name}:${run.plan?.summary ?? '-'}`);
      return decide(run);
    },
  });
  const learns = gate('learns', (run) => ({ kind: 'continue', run: { ...run, plan: { summary: 'p' } } }));
  const passes = gate('passes', (run) => ({ kind: 'continue', run }));
  const defers = gate('defers', () => ({ kind: 'defer', until: new Date('2026-11-29T09:00:00Z'), reason: 'later' }));

  const all = await sequence('all', [passes, learns, passes]).check(runOf('sunday-nights'));
  assert.deepEqual(seen, ['passes:-', 'learns:-', 'passes:p']);
  assert.equal(all.kind === 'continue' ? all.run.plan?.summary : all.kind, 'p');

  seen.length = 0;
  const stopped = await sequence('stops', [learns, defers, passes]).check(runOf('sunday-nights'));
  assert.deepEqual(seen, ['learns:-', 'defers:p'], 'nothing after the gate that stopped it');
  assert.deepEqual(said(stopped), { kind: 'defer', until: '2026-11-29T09:00:00.000Z', reason: 'later' });
});
