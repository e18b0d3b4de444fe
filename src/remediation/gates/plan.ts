import type { ActionContext, Plan } from '../../actions/action.ts';
import type { Run } from '../run.ts';
import { pass, type Gate, type Verdict } from './gate.ts';

/** A dry run stops at the plan (logged as dry_run); so does a plan with nothing to do (skipped). */
export function planVerdict(run: Run, plan: Plan, dryRun: boolean): Verdict {
  if (dryRun) return { kind: 'record', outcome: 'dry_run', reason: `dry run: ${plan.summary}`, plan };
  if (plan.nothingToDo) return { kind: 'record', outcome: 'skipped', reason: `nothing to do: ${plan.summary}`, plan };
  return pass({ ...run, plan });
}

/** Asks the action what it would do. A plan that throws is a failed attempt, like a failed run. */
export function planGate(ctx: ActionContext, globalDryRun: boolean): Gate {
  return {
    name: 'plan',
    async check(run) {
      let plan: Plan;
      try {
        plan = await run.rule.action.plan(ctx, run.data.params);
      } catch (error) {
        return { kind: 'fail', error };
      }
      return planVerdict(run, plan, globalDryRun || run.rule.dryRun);
    },
  };
}
