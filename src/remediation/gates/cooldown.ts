import * as sql from '../../sql/state.ts';
import type { Run } from '../run.ts';
import type { StateDb } from '../state.ts';
import { pass, type Gate, type Verdict } from './gate.ts';

/**
 * A new alert episode for a (rule, target) that ran less than the rule's cooldown ago waits
 * out the rest of it. Scheduled runs and an episode's own continuations (retries, deferrals,
 * seq > 0) are not held: the schedule is the calendar, and retries have their own backoff.
 */
export function cooldownVerdict(run: Run, lastRunAt: Date | null | undefined, now: Date): Verdict {
  const { data, rule } = run;
  if (data.trigger !== 'alert' || data.seq !== 0 || !lastRunAt) return pass(run);
  const last = new Date(lastRunAt).getTime();
  if (now.getTime() - last >= rule.cooldownMs) return pass(run);
  const until = new Date(last + rule.cooldownMs);
  return { kind: 'defer', until, reason: `cooldown of ${rule.name} on ${data.target} until ${until.toISOString()}` };
}

export function cooldownGate(state: StateDb, clock: () => Date = () => new Date()): Gate {
  return {
    name: 'cooldown',
    async check(run) {
      const [last] = await state.query<{ at: Date | null }>(sql.LAST_RUN, [run.rule.name, run.data.target]);
      return cooldownVerdict(run, last?.at, clock());
    },
  };
}
