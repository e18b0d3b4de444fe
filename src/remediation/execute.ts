import type { ActionContext } from '../actions/action.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import * as sql from '../sql/state.ts';
import type { FollowUps } from './followups.ts';
import type { Journal } from './journal.ts';
import type { RemediationMetrics } from './metrics.ts';
import type { Rule } from './rules.ts';
import { entry, type Run } from './run.ts';
import type { StateDb } from './state.ts';

interface ExecutorDeps {
  config: Config;
  state: StateDb;
  ctx: ActionContext;
  log: Logger;
  metrics: RemediationMetrics;
  journal: Journal;
  followUps: FollowUps;
  /** Runs in progress on this replica by job id, so a resolved alert or shutdown can abort them. */
  running: Map<string, AbortController>;
}

/** The end of the pipeline: run and verify the action, then record it, and retry or close the circuit. */
export class Executor {
  private readonly d: ExecutorDeps;

  constructor(d: ExecutorDeps) {
    this.d = d;
  }

  /** Runs a run that passed every gate; the budget gate gave it its "running" log row. */
  async execute(run: Run): Promise<void> {
    const { rule, data, logId } = run;
    if (logId === undefined) throw new Error(`job ${run.jobId} reached its run without a log row`);
    const started = performance.now();
    const controller = new AbortController();
    this.d.running.set(run.jobId, controller);
    const limitMs = this.d.config.remediation.actionTimeoutMs;
    // Aborted a little before the queue would take the job back, so the outcome is ours to record.
    const timeout = setTimeout(() => controller.abort(new Error(`action timed out after ${limitMs / 1000}s`)), Math.max(1_000, limitMs - 5_000));
    try {
      const result = await rule.action.run(this.d.ctx, data.params, controller.signal);
      const verdict = await untilAborted(rule.action.verify(this.d.ctx, data.params, controller.signal), controller.signal);
      const outcome = verdict.fixed ? 'fixed' : 'not_fixed';
      await this.d.journal.finish(rule, logId, outcome, `${result.summary}; verify: ${verdict.detail}`, null, performance.now() - started);
      if (verdict.fixed) {
        await this.d.state.query(sql.CIRCUIT_SUCCESS, [rule.name]);
      } else {
        await this.circuitFailure(rule, `not fixed: ${verdict.detail}`);
        await this.d.followUps.retry(run, rule.cooldownMs, `not fixed: ${verdict.detail}`);
      }
      await this.d.journal.annotate(rule, data, outcome, `${result.summary}; ${verdict.detail}`);
    } catch (err) {
      await this.fail(run, err, performance.now() - started);
    } finally {
      clearTimeout(timeout);
      this.d.running.delete(run.jobId);
    }
  }

  /**
   * A failed attempt (the plan, run or verify threw): logged (its running row finished, or a
   * row of its own), counted towards the circuit, retried with backoff, annotated.
   */
  async fail(run: Run, err: unknown, ms: number): Promise<void> {
    const { rule, data } = run;
    const message = err instanceof Error ? err.message : String(err);
    if (run.logId !== undefined) await this.d.journal.finish(rule, run.logId, 'failed', null, message, ms);
    else await this.d.journal.record(entry(run, { outcome: 'failed', error: message }));
    await this.circuitFailure(rule, `failed: ${message}`);
    await this.d.followUps.retry(run, Math.min(rule.cooldownMs, 30_000 * 2 ** (data.attempt - 1)), `failed: ${message}`);
    await this.d.journal.annotate(rule, data, 'failed', message);
  }

  private async circuitFailure(rule: Rule, reason: string): Promise<void> {
    const [c] = await this.d.state.query<{ consecutive_failures: number; open: boolean }>(sql.CIRCUIT_FAILURE, [
      rule.name,
      this.d.config.remediation.circuit.failures,
      reason,
    ]);
    if (c?.open) {
      this.d.log.error({ rule: rule.name, failures: c.consecutive_failures, reason }, 'circuit open: rule stops acting; page a human');
      this.d.metrics.circuitOpen.set({ rule: rule.name }, 1);
    }
  }
}

/**
 * `work`, unless `signal` fires first: then rejects with the signal's reason. The work itself
 * is not cancelled (it may not listen); it is only no longer waited for.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
