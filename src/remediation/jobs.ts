/** The pg-boss queue every remediation job lives in. */
export const QUEUE = 'housekeeper-remediation';

/** One alert as Alertmanager sends it (payload version 4). */
export interface AlertIn {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  fingerprint: string;
}

/** What a job carries. Params were rendered from labels and validated when it was queued. */
export interface JobData {
  trigger: 'alert' | 'schedule';
  episode: string;
  rule: string;
  alertname: string;
  fingerprint: string;
  startsAt: string;
  params: Record<string, unknown>;
  target: string;
  /** Real runs so far + 1. */
  attempt: number;
  /** Continuations so far (deferrals and retries), for their ids. */
  seq: number;
  /** When a replica that does not know the rule first handed the job back (ISO time). */
  handedBackAt?: string;
}

export type Outcome = 'fixed' | 'not_fixed' | 'failed' | 'skipped' | 'deferred' | 'dry_run';

export type AlertResult = 'queued' | 'duplicate' | 'unmatched' | 'cancelled' | 'resolved' | 'invalid_params';
