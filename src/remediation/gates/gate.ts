import type { Plan } from '../../actions/action.ts';
import type { Run } from '../run.ts';

/**
 * What a gate decided about a run:
 * - continue: the next gate (or the run itself) sees `run`, possibly with what this gate learned;
 * - record: the job ends here with this log entry (skipped, dry_run);
 * - defer: the job ends here and the episode continues at `until` (a deferral, logged);
 * - fail: the job ends here as a failed attempt (counts towards the circuit, may retry).
 */
export type Verdict =
  | { readonly kind: 'continue'; readonly run: Run }
  | { readonly kind: 'record'; readonly outcome: 'skipped' | 'dry_run'; readonly reason: string; readonly plan?: Plan }
  | { readonly kind: 'defer'; readonly until: Date; readonly reason: string }
  | { readonly kind: 'fail'; readonly error: unknown };

/** One check a job passes before its action runs. Errors it throws (state I/O) fail the handler, not the attempt. */
export interface Gate {
  readonly name: string;
  check(run: Run): Promise<Verdict>;
}

export const pass = (run: Run): Verdict => ({ kind: 'continue', run });
export const skip = (reason: string): Verdict => ({ kind: 'record', outcome: 'skipped', reason });

/** Gates in order, each seeing the run as the last one passed it; the first that stops the run decides. */
export function sequence(name: string, gates: readonly Gate[]): Gate {
  return {
    name,
    async check(run) {
      let current = run;
      for (const gate of gates) {
        const verdict = await gate.check(current);
        if (verdict.kind !== 'continue') return verdict;
        current = verdict.run;
      }
      return pass(current);
    },
  };
}
