import type { Plan } from '../actions/action.ts';
import type { JobData } from './jobs.ts';
import type { RecordInput } from './journal.ts';
import type { Rule } from './rules.ts';

/**
 * One job being handled: what every gate, the run itself and its follow-ups read. Gates that
 * learn something later steps need return a new Run with it (the plan; the log row that
 * reserved a place in the budget), as Alertmanager's notify stages pass their context on.
 */
export interface Run {
  readonly jobId: string;
  readonly data: JobData;
  readonly rule: Rule;
  /** Set by the plan gate. */
  readonly plan?: Plan;
  /** The "running" log row, set by the budget gate once the run has its place. */
  readonly logId?: string;
}

/** The log row of this run, with what the caller adds (the outcome, a reason, an error). */
export function entry(run: Run, fields: Pick<RecordInput, 'outcome'> & Partial<Pick<RecordInput, 'reason' | 'error' | 'plan'>>): RecordInput {
  const { data } = run;
  return {
    trigger: data.trigger,
    rule: run.rule,
    target: data.target,
    params: data.params,
    episode: data.episode,
    jobId: run.jobId,
    attempt: data.attempt,
    alert: data,
    ...fields,
  };
}
