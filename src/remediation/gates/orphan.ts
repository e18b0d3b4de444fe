import * as sql from '../../sql/state.ts';
import type { Run } from '../run.ts';
import type { StateDb } from '../state.ts';
import { pass, skip, type Gate, type Verdict } from './gate.ts';

/** A replica died while running this job: it runs again only if that is safe. */
export function orphanVerdict(run: Run, interruptedRuns: number): Verdict {
  if (interruptedRuns > 0 && !run.rule.action.idempotent) return skip('interrupted run of a non-idempotent action is not repeated');
  return pass(run);
}

/** Closes the log rows a dead replica left "running" for this job, saying so, then decides. */
export function orphanGate(state: StateDb): Gate {
  return {
    name: 'orphan',
    async check(run) {
      const orphans = await state.query<{ id: string }>(sql.RUNNING_FOR_JOB, [run.jobId]);
      for (const o of orphans) {
        await state.query(sql.FINISH_LOG, [o.id, 'failed', 'interrupted', 'the replica running it stopped', null]);
      }
      return orphanVerdict(run, orphans.length);
    },
  };
}
