import type { Config } from '../config.ts';
import { createLogger, type Logger } from '../log.ts';
import { buildApp, type App } from '../app.ts';
import { Samples, evaluate, renderTable, type CheckResult } from './checks.ts';
import { remediationChecks } from './remediation.ts';

// `housekeeper check`: one collection of every configured target, evaluated against the
// runbook's thresholds. It answers at 9 AM in seconds: every wait (background checks, the
// state database) is bounded by one short budget, and what has not reported by then is said
// to be pending rather than waited for.

export interface CheckOptions {
  json: boolean;
  /** The budget for waiting on background checks and on the state database. */
  waitMs: number;
}

const POLL_MS = 250;

/**
 * Collects until the background checks that can report have reported, or the budget is
 * spent. FAISS checks and backup verification start on the first scrape and never block one;
 * a kind with no housekeeper backup has nothing to verify and is not waited for.
 */
async function settledCollection(app: App, config: Config, deadline: number): Promise<Samples> {
  // The first collection gets the scrape timeout, as a scrape would; later ones what is left.
  let timeout = config.server.scrapeTimeoutMs;
  for (;;) {
    await app.runner.collect(timeout);
    timeout = Math.min(config.server.scrapeTimeoutMs, Math.max(POLL_MS, deadline - Date.now()));
    const s = new Samples(await app.registry.getMetricsAsJSON());
    if (settled(s, config) || Date.now() + POLL_MS >= deadline) return s;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function settled(s: Samples, config: Config): boolean {
  const faissDone = config.faiss.every((f) => s.one('faiss_index_check_timestamp_seconds', { target: f.name }) !== undefined) && s.sum('faiss_index_check_running') === 0;
  const pendingVerification = s
    .all('backup_last_verified_timestamp_seconds')
    .some((x) => x.value === 0 && (s.one('backup_last_timestamp_seconds', { kind: String(x.labels['kind']), source: 'housekeeper' }) ?? 0) > 0);
  return faissDone && !pendingVerification;
}

/** The remediation rows, or one row saying the state database did not answer in time. */
async function boundedRemediationChecks(config: Config, log: Logger, ms: number): Promise<CheckResult[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<CheckResult[]>((resolve) => {
    timer = setTimeout(
      () => resolve([{ check: 'remediation failures (24h)', target: 'state', status: 'warn', value: `the state database did not answer within ${ms / 1000} s`, threshold: 'none' }]),
      ms,
    );
  });
  try {
    return await Promise.race([remediationChecks(config, log), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the check and writes its report; resolves to the exit code (0 green, 1 not). */
export async function runCheck(config: Config, o: CheckOptions, write: (s: string) => void): Promise<number> {
  const deadline = Date.now() + o.waitMs;
  const log = createLogger('silent');
  const app = buildApp({ config, log });
  try {
    const samples = await settledCollection(app, config, deadline);
    const remediation = await boundedRemediationChecks(config, log, Math.max(1_000, deadline - Date.now()));
    const results = [...evaluate(samples, config, Date.now() / 1000, app.runner.failures()), ...remediation];
    const bad = results.some((r) => r.status === 'fail' || r.status === 'warn');
    write(o.json ? `${JSON.stringify({ ok: !bad, checks: results }, null, 2)}\n` : `${renderTable(results)}\n`);
    return bad ? 1 : 0;
  } finally {
    await app.close();
  }
}
