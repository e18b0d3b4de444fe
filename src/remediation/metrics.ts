import type { Counter, Gauge, Histogram } from 'prom-client';
import type { MetricFactory } from '../metrics/registry.ts';

/** The remediation side's own metrics: what ran, how it went, what waits, what is open. */
export interface RemediationMetrics {
  remediations: Counter<string>;
  duration: Histogram<string>;
  queue: Gauge<string>;
  circuitOpen: Gauge<string>;
  notifications: Counter<string>;
  alerts: Counter<string>;
}

export function declareRemediationMetrics(f: MetricFactory): RemediationMetrics {
  return {
    remediations: f.counter(
      'housekeeper_remediations_total',
      'Remediation jobs finished, by rule, action and outcome (fixed, not_fixed, failed, skipped, deferred, dry_run).',
      ['rule', 'action', 'outcome'],
    ),
    duration: f.histogram('housekeeper_remediation_duration_seconds', 'How long actions took to run and verify.', ['rule', 'action'], [0.05, 0.25, 1, 5, 15, 60, 300, 1800]),
    queue: f.gauge('housekeeper_remediation_queue_jobs', 'Remediation jobs in the durable queue, by state (queued, deferred, active).', ['state']),
    circuitOpen: f.gauge('housekeeper_remediation_circuit_open', 'Whether a rule\'s circuit is open (1): it has stopped acting and a human must look.', ['rule']),
    notifications: f.counter(
      'housekeeper_webhook_notifications_total',
      'Alertmanager notifications received, by result (accepted, unauthorized, invalid, unavailable).',
      ['result'],
    ),
    alerts: f.counter(
      'housekeeper_webhook_alerts_total',
      'Alerts in accepted notifications, by their status and what came of them (queued, duplicate, unmatched, cancelled, invalid_params, circuit_open).',
      ['status', 'result'],
    ),
  };
}
