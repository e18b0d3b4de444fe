import type { Config } from '../../config.ts';
import * as sql from '../../sql/state.ts';
import type { Run } from '../run.ts';
import type { StateDb } from '../state.ts';
import { pass, skip, type Gate, type Verdict } from './gate.ts';

/** A rule whose circuit opened (repeated failures) stops acting until it half-opens or a human resets it. */
export function circuitVerdict(run: Run, open: boolean): Verdict {
  return open ? skip('circuit open: repeated failures; a human must look') : pass(run);
}

export function circuitGate(state: StateDb, circuit: Config['remediation']['circuit']): Gate {
  return {
    name: 'circuit',
    async check(run) {
      // After resetAfter, an open circuit lets one run through (half-open) to see if it is fixed.
      await state.query(sql.CIRCUIT_HALF_OPEN, [run.rule.name, circuit.failures, circuit.resetAfterMs / 1000]);
      const [c] = await state.query<{ open: boolean }>(sql.GET_CIRCUIT, [run.rule.name]);
      return circuitVerdict(run, c?.open === true);
    },
  };
}
