import type { Config } from '../../config.ts';
import * as sql from '../../sql/state.ts';
import type { Journal } from '../journal.ts';
import { entry } from '../run.ts';
import type { StateDb } from '../state.ts';
import { pass, type Gate } from './gate.ts';

type Budget = Config['remediation']['budget'];

/** When the budget has room again, if `runs` alert-triggered runs since `oldest` have spent it; undefined if not spent. */
export function budgetSpentUntil(budget: Budget, runs: number, oldest: Date | null, now: number): Date | undefined {
  if (runs < budget.maxActions) return undefined;
  return new Date(new Date(oldest ?? now).getTime() + budget.perMs);
}

/**
 * The budget guards against alert storms (the runbook's calendar is not one: scheduled runs
 * are not held). Checking it and recording the start of the run happen under one lock, so
 * replicas cannot overspend; the run continues with its "running" log row.
 */
export function budgetGate(state: StateDb, journal: Journal, budget: Budget): Gate {
  return {
    name: 'budget',
    async check(run) {
      const reserved = await state.transaction<{ until: Date } | { logId: string }>(async (q) => {
        if (run.data.trigger === 'alert') {
          await q(sql.BUDGET_LOCK);
          const [b] = await q<{ n: number; oldest: Date | null }>(sql.RUNS_SINCE, [new Date(Date.now() - budget.perMs)]);
          const until = b ? budgetSpentUntil(budget, b.n, b.oldest, Date.now()) : undefined;
          if (until) return { until };
        }
        return { logId: await journal.start(q, entry(run, { outcome: 'running', plan: run.plan })) };
      });
      if ('until' in reserved) {
        const reason = `global budget of ${budget.maxActions} actions per ${budget.perMs / 1000}s spent; waits until ${reserved.until.toISOString()}`;
        return { kind: 'defer', until: reserved.until, reason };
      }
      return pass({ ...run, logId: reserved.logId });
    },
  };
}
