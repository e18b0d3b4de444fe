import type { Run } from '../run.ts';
import { inAnyWindow, nextWindowStart } from '../windows.ts';
import { pass, skip, type Gate, type Verdict } from './gate.ts';

/** Outside its maintenance windows a rule's run waits for the next one, or is skipped if the rule says so. */
export function windowVerdict(run: Run, now: Date): Verdict {
  const { windows, outsideWindow } = run.rule;
  if (windows.length === 0 || inAnyWindow(windows, now)) return pass(run);
  if (outsideWindow === 'skip') return skip('outside its maintenance windows');
  const next = nextWindowStart(windows, now);
  if (!next) return skip('no maintenance window in the next 8 days');
  return { kind: 'defer', until: next, reason: `outside its maintenance windows; waits for ${next.toISOString()}` };
}

export function windowGate(clock: () => Date = () => new Date()): Gate {
  return {
    name: 'window',
    check: async (run) => windowVerdict(run, clock()),
  };
}
