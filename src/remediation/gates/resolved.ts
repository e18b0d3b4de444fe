import * as sql from '../../sql/state.ts';
import type { Run } from '../run.ts';
import type { StateDb } from '../state.ts';
import { pass, skip, type Gate, type Verdict } from './gate.ts';

/** An alert that resolved while its job waited (delay, window, cooldown) needs no action. */
export function resolvedVerdict(run: Run, episodeStatus: string | undefined): Verdict {
  return episodeStatus === 'resolved' ? skip('alert resolved before the job ran') : pass(run);
}

export function resolvedGate(state: StateDb): Gate {
  return {
    name: 'resolved',
    async check(run) {
      // Scheduled runs have no alert to resolve.
      if (run.data.trigger !== 'alert') return pass(run);
      const [ep] = await state.query<{ status: string }>(sql.GET_EPISODE, [run.data.episode]);
      return resolvedVerdict(run, ep?.status);
    },
  };
}
