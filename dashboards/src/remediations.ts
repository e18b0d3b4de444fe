// What housekeeper did about it. Grafana cannot read GET /api/remediations without a plugin,
// so the log shows here as (1) Grafana's annotation list of the annotations housekeeper posts
// (tag `housekeeper`, one per finished remediation, tagged rule:, action:, outcome:, target:)
// and (2) the remediation metrics: outcomes, open circuits, the queue, webhook traffic.
// Remediation metrics are labelled by rule, action and outcome, not target (the target is in
// the annotation's tags); `$target` filters the collectors row at the bottom.
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import { collectionsStat, openCircuitsStat, remediationsFailedStat, remediationsFixedStat } from './check-stats.ts';
import type { TimeseriesBuilder } from './common.ts';
import {
  annotationsList,
  columns,
  defineDashboard,
  increaseFromZero,
  instant,
  labelVariable,
  query,
  row,
  sel,
  stacked,
  stat,
  steps,
  table,
  tableQuery,
  timeseries,
  valueText,
} from './common.ts';

/** The `$rule` variable's matcher (remediation metrics are labelled by rule, not target). */
const rule = 'rule=~"$rule"';

const OUTCOME_COLORS: Record<string, string> = {
  fixed: 'green',
  not_fixed: 'orange',
  failed: 'red',
  skipped: 'blue',
  deferred: 'purple',
  dry_run: 'text',
};

export default defineDashboard({
  uid: 'housekeeper-remediations',
  title: 'Housekeeper / Remediations',
  description: 'The remediation log (Grafana annotations housekeeper posts), outcomes over time, open circuits, the durable queue and Alertmanager webhook traffic.',
  targetSelector: 'housekeeper_collector_success',
  tags: ['remediation'],
  from: 'now-24h',
  variables: [labelVariable('rule', 'Rule', 'housekeeper_remediation_circuit_open', 'rule')],
  rows,
});

/** Colours each outcome's series the same on every panel. */
function outcomeColors(p: TimeseriesBuilder): TimeseriesBuilder {
  for (const [outcome, color] of Object.entries(OUTCOME_COLORS)) {
    p.overrideByName(outcome, [{ id: 'color', value: { mode: 'fixed', fixedColor: color } }]);
  }
  return p;
}

/** Remediations finished per interval, summed `by` those labels, as stacked bars. */
function remediationBars(title: string, description: string, by: string, legend: string): TimeseriesBuilder {
  return timeseries(title, 'short', description)
    .drawStyle(common.GraphDrawStyle.Bars)
    .fillOpacity(80)
    .stacking(stacked())
    .interval('5m')
    .withTarget(query(`sum by (${by}) ${increaseFromZero(`housekeeper_remediations_total{${rule}}`, '$__interval')}`, legend));
}

function rows(d: dashboard.DashboardBuilder): void {
  d.withRow(row('Now'))
    .withPanel(
      openCircuitsStat(
        'Open circuits',
        'Rules whose circuit is open: they stopped acting after repeated failures and a human must look (one trial run goes through after remediation.circuit.reset_after).',
        rule,
      ),
    )
    .withPanel(remediationsFailedStat('Failed in range', 'Remediations that failed (critical) or ran without clearing the condition (warning), in the dashboard\'s time range.', '$__range', rule))
    .withPanel(remediationsFixedStat('Fixed in range', 'Remediations that ran and cleared the condition, in the dashboard\'s time range.', '$__range', rule))
    .withPanel(
      stat('Queue', 'none', 'Jobs in the durable queue by state: queued (ready), deferred (waiting for a delay or a window), active (running).')
        .span(6)
        .withTarget(instant('max by (state) (housekeeper_remediation_queue_jobs)', '{{state}}'))
        .thresholds(steps('blue')),
    )
    .withPanel(
      stat('Circuits', 'none', 'Each rule\'s circuit: closed (acting) or OPEN (stopped).')
        .span(6)
        .withTarget(instant(`max by (rule) (housekeeper_remediation_circuit_open{${rule}})`, '{{rule}}'))
        .mappings(valueText({ '0': ['closed', 'green'], '1': ['OPEN', 'red'] }))
        .thresholds(steps('green', [1, 'red'])),
    );

  d.withRow(row('Log'))
    .withPanel(
      annotationsList(
        'Remediation log',
        'Every remediation housekeeper finished, as it posted it to Grafana\'s annotations (tag housekeeper; tags name the rule, action, outcome and target). Needs the `grafana` section in housekeeper\'s config.',
      ).span(12).height(12),
    )
    .withPanel(
      columns(
        table('Remediations in range', 'none', 'Remediations finished in the dashboard\'s time range, by rule, action and outcome (from housekeeper_remediations_total).')
          .span(12)
          .height(12)
          .withTarget(tableQuery(`sum by (rule, action, outcome) ${increaseFromZero(`housekeeper_remediations_total{${rule}}`, '$__range')} > 0`))
          .decimals(0),
        { rename: { Value: 'count' }, sort: { field: 'count', desc: true } },
      ),
    );

  d.withRow(row('Over time'))
    .withPanel(outcomeColors(remediationBars('Remediations by outcome', 'Remediations finished per interval, by outcome.', 'outcome', '{{outcome}}')))
    .withPanel(remediationBars('Remediations by rule', 'Remediations finished per interval, by rule and outcome.', 'rule, outcome', '{{rule}} {{outcome}}'))
    .withPanel(
      timeseries('Action duration (p90)', 's', 'How long actions took to run and verify, 90th percentile, by action.').withTarget(
        query(`histogram_quantile(0.9, sum by (le, action) (rate(housekeeper_remediation_duration_seconds_bucket{${rule}}[$__rate_interval])))`, '{{action}}'),
      ),
    )
    .withPanel(
      timeseries('Open circuits', 'short', 'Each rule\'s circuit over time (1: open).')
        .min(0)
        .max(1)
        .withTarget(query(`max by (rule) (housekeeper_remediation_circuit_open{${rule}})`, '{{rule}}')),
    )
    .withPanel(
      timeseries('Queue', 'short', 'Jobs in the durable queue by state.')
        .stacking(stacked())
        .fillOpacity(40)
        .withTarget(query('max by (state) (housekeeper_remediation_queue_jobs)', '{{state}}')),
    );

  d.withRow(row('Alertmanager webhook'))
    .withPanel(
      timeseries('Notifications', 'reqps', 'Alertmanager notifications received per second, by result (accepted, unauthorized, invalid, unavailable).').withTarget(
        query('sum by (result) (rate(housekeeper_webhook_notifications_total[$__rate_interval]))', '{{result}}'),
      ),
    )
    .withPanel(
      timeseries('Alerts', 'cps', 'Alerts in accepted notifications per second, by their status and what came of them (queued, duplicate, unmatched, ...).').withTarget(
        query('sum by (status, result) (rate(housekeeper_webhook_alerts_total[$__rate_interval]))', '{{status}} {{result}}'),
      ),
    );

  d.withRow(row('Collectors'))
    .withPanel(collectionsStat('Collections', 'Each collector and target: UP when its last collection succeeded. A failing collection hides that target\'s alerts.').span(24))
    .withPanel(
      timeseries('Collection time', 's', 'How long each collection took; near the scrape timeout, collections start failing.')
        .span(24)
        .withTarget(query(`max by (collector, target) (housekeeper_collector_duration_seconds${sel()})`, '{{collector}} {{target}}')),
    );
}
