// What housekeeper did about it. Grafana cannot read GET /api/remediations without a plugin,
// so the log shows here as (1) Grafana's annotation list of the annotations housekeeper posts
// (tag `housekeeper`, one per finished remediation, tagged rule:, action:, outcome:, target:)
// and (2) the remediation metrics: outcomes, open circuits, the queue, webhook traffic.
// Remediation metrics are labelled by rule, action and outcome, not target (the target is in
// the annotation's tags); `$target` filters the collectors row at the bottom.
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import {
  annotationsList,
  columns,
  finish,
  housekeeperDashboard,
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
  upDown,
  valueText,
  zeroIsGood,
} from './common.ts';

export const uid = 'housekeeper-remediations';

const OUTCOME_COLORS: Record<string, string> = {
  fixed: 'green',
  not_fixed: 'orange',
  failed: 'red',
  skipped: 'blue',
  deferred: 'purple',
  dry_run: 'text',
};

export function build(): dashboard.Dashboard {
  const rule = 'rule=~"$rule"';
  const d = housekeeperDashboard({
    uid,
    title: 'Housekeeper / Remediations',
    description: 'The remediation log (Grafana annotations housekeeper posts), outcomes over time, open circuits, the durable queue and Alertmanager webhook traffic.',
    targetSelector: 'housekeeper_collector_success',
    tags: ['remediation'],
    from: 'now-24h',
  }).withVariable(labelVariable('rule', 'Rule', 'housekeeper_remediation_circuit_open', 'rule'));

  const outcomeColors = (p: ReturnType<typeof timeseries>): ReturnType<typeof timeseries> => {
    for (const [outcome, color] of Object.entries(OUTCOME_COLORS)) {
      p.overrideByName(outcome, [{ id: 'color', value: { mode: 'fixed', fixedColor: color } }]);
    }
    return p;
  };

  d.withRow(row('Now'))
    .withPanel(
      stat('Open circuits', 'none', 'Rules whose circuit is open: they stopped acting after repeated failures and a human must look (one trial run goes through after remediation.circuit.reset_after).')
        .withTarget(instant(`count(max by (rule) (housekeeper_remediation_circuit_open{${rule}}) == 1) or vector(0)`, 'open'))
        .thresholds(zeroIsGood()),
    )
    .withPanel(
      stat('Failed in range', 'none', 'Remediations that failed (critical) or ran without clearing the condition (warning), in the dashboard\'s time range.')
        .withTarget(instant(`sum${increaseFromZero(`housekeeper_remediations_total{${rule}, outcome="failed"}`, '$__range')} or vector(0)`, 'failed'))
        .withTarget(instant(`sum${increaseFromZero(`housekeeper_remediations_total{${rule}, outcome="not_fixed"}`, '$__range')} or vector(0)`, 'not fixed'))
        .thresholds(zeroIsGood())
        .overrideByName('not fixed', [{ id: 'thresholds', value: zeroIsGood('yellow').build() }])
        .decimals(0),
    )
    .withPanel(
      stat('Fixed in range', 'none', 'Remediations that ran and cleared the condition, in the dashboard\'s time range.')
        .withTarget(instant(`sum${increaseFromZero(`housekeeper_remediations_total{${rule}, outcome="fixed"}`, '$__range')} or vector(0)`, 'fixed'))
        .thresholds(steps('blue'))
        .decimals(0),
    )
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
    .withPanel(
      outcomeColors(
        timeseries('Remediations by outcome', 'short', 'Remediations finished per interval, by outcome.')
          .drawStyle(common.GraphDrawStyle.Bars)
          .fillOpacity(80)
          .stacking(stacked())
          .interval('5m')
          .withTarget(query(`sum by (outcome) ${increaseFromZero(`housekeeper_remediations_total{${rule}}`, '$__interval')}`, '{{outcome}}')),
      ),
    )
    .withPanel(
      timeseries('Remediations by rule', 'short', 'Remediations finished per interval, by rule and outcome.')
        .drawStyle(common.GraphDrawStyle.Bars)
        .fillOpacity(80)
        .stacking(stacked())
        .interval('5m')
        .withTarget(query(`sum by (rule, outcome) ${increaseFromZero(`housekeeper_remediations_total{${rule}}`, '$__interval')}`, '{{rule}} {{outcome}}')),
    )
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
    .withPanel(
      stat('Collections', 'none', 'Each collector and target: UP when its last collection succeeded. A failing collection hides that target\'s alerts.')
        .span(24)
        .withTarget(instant(`min by (collector, target) (housekeeper_collector_success${sel()})`, '{{collector}} {{target}}'))
        .mappings(upDown())
        .thresholds(steps('red', [1, 'green'])),
    )
    .withPanel(
      timeseries('Collection time', 's', 'How long each collection took; near the scrape timeout, collections start failing.')
        .span(24)
        .withTarget(query(`max by (collector, target) (housekeeper_collector_duration_seconds${sel()})`, '{{collector}} {{target}}')),
    );

  return finish(d);
}
