import type { Plan } from '../actions/action.ts';
import type { Logger } from '../log.ts';
import * as sql from '../sql/state.ts';
import type { Annotator } from './grafana.ts';
import type { AlertIn, JobData, Outcome } from './jobs.ts';
import type { RemediationMetrics } from './metrics.ts';
import type { Rule } from './rules.ts';
import type { StateDb, Query } from './state.ts';

/** One row of the remediation log (the runbook's maintenance log). */
export interface RecordInput {
  trigger: 'alert' | 'schedule';
  rule: Rule;
  target: string;
  params: Record<string, unknown> | undefined;
  episode: string | undefined;
  jobId: string | undefined;
  attempt: number;
  alert: AlertIn | JobData | undefined;
  outcome: Outcome | 'running';
  plan?: Plan;
  reason?: string;
  error?: string;
}

interface JournalDeps {
  state: StateDb;
  log: Logger;
  metrics: RemediationMetrics;
  annotator: Annotator | undefined;
  replica: string;
}

/**
 * What came of each job, said everywhere it is read: the log table, the service log, the
 * remediation metrics and Grafana annotations. One place, so every outcome is said alike.
 */
export class Journal {
  private readonly d: JournalDeps;

  constructor(d: JournalDeps) {
    this.d = d;
  }

  /** Writes one log row; returns its id. Counts it unless it is the start of a run. */
  async record(r: RecordInput): Promise<string> {
    const [row] = await this.d.state.query<{ id: string }>(sql.INSERT_LOG, this.values(r));
    if (r.outcome !== 'running') {
      this.count(r.rule, r.outcome, 0);
      this.d.log.info({ rule: r.rule.name, action: r.rule.action.name, target: r.target, outcome: r.outcome, reason: r.reason, error: r.error }, 'remediation');
    }
    return String(row?.id);
  }

  /** The "running" row that starts a run, inside the caller's transaction (see the budget gate). */
  async start(q: Query, r: RecordInput): Promise<string> {
    const [row] = await q<{ id: string }>(sql.INSERT_LOG, this.values({ ...r, outcome: 'running' }));
    return String(row?.id);
  }

  /** Completes a run's row with its outcome and duration, and counts it. */
  async finish(rule: Rule, logId: string, outcome: Outcome, summary: string | null, error: string | null, ms: number): Promise<void> {
    await this.d.state.query(sql.FINISH_LOG, [logId, outcome, summary, error, ms]);
    this.count(rule, outcome, ms);
  }

  private count(rule: Rule, outcome: Outcome, ms: number): void {
    this.d.metrics.remediations.inc({ rule: rule.name, action: rule.action.name, outcome });
    if (ms > 0) this.d.metrics.duration.observe({ rule: rule.name, action: rule.action.name }, ms / 1000);
  }

  async annotate(rule: Rule, data: JobData, outcome: Outcome, text: string): Promise<void> {
    if (!this.d.annotator) return;
    await this.d.annotator.post({
      text: `${rule.action.name} on ${data.target} (${rule.name}): ${outcome} — ${text}`,
      tags: [`rule:${rule.name}`, `action:${rule.action.name}`, `outcome:${outcome}`, `target:${data.target}`],
    });
  }

  private values(r: RecordInput): unknown[] {
    const alert = r.alert;
    const labels = alert && 'labels' in alert ? alert.labels : undefined;
    return [
      r.trigger,
      r.rule.name,
      r.rule.action.name,
      r.target,
      alert ? ('alertname' in alert ? alert.alertname || null : labels?.['alertname'] ?? null) : null,
      alert?.fingerprint || null,
      alert ? new Date(alert.startsAt) : null,
      r.episode ?? null,
      r.jobId ?? null,
      r.attempt,
      r.params === undefined ? null : JSON.stringify(r.params),
      r.plan === undefined ? null : JSON.stringify(r.plan),
      r.outcome,
      r.reason ?? null,
      r.error ?? null,
      null,
      this.d.replica,
      r.outcome === 'dry_run',
    ];
  }
}
