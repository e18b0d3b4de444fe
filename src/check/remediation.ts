import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { openState } from '../remediation/state.ts';
import { OPEN_CIRCUITS, RECENT_FAILURES } from '../sql/state.ts';
import type { CheckResult } from './checks.ts';

/** Recent remediation failures and open circuits, from the shared state database. */
export async function remediationChecks(config: Config, log: Logger): Promise<CheckResult[]> {
  if (!config.remediation.enabled) return [];
  if (config.state.url === undefined) {
    // PGlite allows one process per data directory: the running service owns it.
    return [{ check: 'remediation failures (24h)', target: 'state', status: 'skip', value: 'embedded state belongs to the running service; see GET /api/remediations', threshold: 'none' }];
  }
  const state = await openState(config, log);
  try {
    const out: CheckResult[] = [];
    const failures = await state.query<{ rule: string; n: number; last_error: string | null }>(RECENT_FAILURES);
    out.push({
      check: 'remediation failures (24h)',
      target: 'all rules',
      status: failures.length > 0 ? 'warn' : 'ok',
      value: failures.length > 0 ? failures.map((f) => `${f.rule}: ${f.n}`).join(', ') : '0',
      threshold: 'none',
    });
    for (const c of await state.query<{ rule: string; reason: string | null }>(OPEN_CIRCUITS)) {
      out.push({ check: 'circuit open', target: c.rule, status: 'fail', value: c.reason ?? 'open', threshold: 'closed' });
    }
    return out;
  } finally {
    await state.close();
  }
}
