import type { PgBoss } from 'pg-boss';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import * as sql from '../sql/state.ts';
import { uuidFor } from '../util/uuid.ts';
import type { BatchStore } from './batch-store.ts';
import { QUEUE, type AlertIn, type AlertResult, type JobData } from './jobs.ts';
import type { Journal } from './journal.ts';
import { paramsFor, ruleMatches, type Rule } from './rules.ts';
import type { StateDb } from './state.ts';

interface IntakeDeps {
  config: Config;
  state: StateDb;
  rules: readonly Rule[];
  boss: PgBoss;
  store: BatchStore;
  journal: Journal;
  log: Logger;
  /** Runs in progress on this replica by job id: a resolved alert aborts its own. */
  running: ReadonlyMap<string, AbortController>;
}

/**
 * Alert → durable job. Job ids are derived from (rule, fingerprint, startsAt), so every
 * replica and every repeat of a notification names the same job, and it is stored once.
 */
export class Intake {
  private readonly d: IntakeDeps;

  constructor(d: IntakeDeps) {
    this.d = d;
  }

  rulesFor(labels: Record<string, string>): Rule[] {
    return this.d.rules.filter((r) => ruleMatches(r, labels));
  }

  /** Stores the jobs for one firing alert, once per matching rule. Throws if it could not. */
  async accept(alert: AlertIn): Promise<AlertResult[]> {
    const rules = this.rulesFor(alert.labels);
    if (rules.length === 0) return ['unmatched'];
    if (alert.status === 'resolved') return this.resolve(alert);
    const results: AlertResult[] = [];
    for (const rule of rules) results.push(await this.enqueue(rule, alert));
    return results;
  }

  /** A resolved alert cancels its jobs that have not started. Returns one result per rule. */
  async resolve(alert: AlertIn): Promise<AlertResult[]> {
    const rows = await this.d.state.query<{ episode: string; current_job: string; rule: string }>(sql.RESOLVE_EPISODES, [
      alert.fingerprint,
      new Date(alert.startsAt),
    ]);
    for (const r of rows) {
      await this.d.boss.cancel(QUEUE, r.current_job).catch((err: unknown) => this.d.log.debug({ err }, 'cancel: job not cancellable'));
      this.d.running.get(r.current_job)?.abort(new Error('alert resolved'));
    }
    return rows.length > 0 ? rows.map(() => 'cancelled' as const) : ['resolved'];
  }

  private async enqueue(rule: Rule, alert: AlertIn): Promise<AlertResult> {
    let params: Record<string, unknown>;
    try {
      params = paramsFor(rule, alert.labels);
    } catch (err) {
      // A label value that does not fit the action's schema never reaches the action.
      await this.d.journal.record({
        trigger: 'alert', rule, target: '', alert, params: undefined, outcome: 'skipped',
        reason: `invalid params: ${(err as Error).message}`, episode: undefined, jobId: undefined, attempt: 0,
      });
      return 'invalid_params';
    }
    const startsAt = new Date(alert.startsAt).toISOString();
    const episode = uuidFor(`${rule.name}\u0000${alert.fingerprint}\u0000${startsAt}`);
    const target = rule.action.targetKey(params, this.d.config);
    const alertname = alert.labels['alertname'] ?? '';
    const data: JobData = { trigger: 'alert', episode, rule: rule.name, alertname, fingerprint: alert.fingerprint, startsAt, params, target, attempt: 1, seq: 0 };
    const inserted = await this.d.store.store(
      {
        id: episode,
        data,
        startAfter: new Date(Date.now() + rule.delayMs).toISOString(),
        group: { id: target },
        retentionSeconds: Math.ceil((rule.delayMs + this.d.config.remediation.jobTtlMs) / 1000),
      },
      { episode, rule: rule.name, alertname, fingerprint: alert.fingerprint, starts_at: startsAt, target, labels: alert.labels },
    );
    return inserted ? 'queued' : 'duplicate';
  }
}
