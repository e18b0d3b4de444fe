// The FAISS vector indexes: loadable, vectors against the source table, recall against its
// floor, search latency, and the runbook's maintenance calendar (retrain weekly, optimize
// monthly, rebuild quarterly or on corruption).
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { faissLoadableStat, faissRecallStat } from './check-stats.ts';
import type { StatBuilder } from './common.ts';
import {
  columns,
  columnUnit,
  defineDashboard,
  higherIsWorse,
  instant,
  lowerIsWorse,
  query,
  row,
  sel,
  stat,
  steps,
  table,
  tableQuery,
  timeseries,
  withThresholdLines,
  yesNoStat,
} from './common.ts';
import { DAY, runbook as r } from '../../src/runbook.ts';

export default defineDashboard({
  uid: 'housekeeper-vector-index',
  title: 'Housekeeper / Vector index (FAISS)',
  description: 'FAISS indexes: loadable, vectors against the source table, recall@10 against its floor, search latency, checks and maintenance.',
  targetSelector: 'faiss_index_loadable',
  tags: ['faiss'],
  rows,
});

/** Time since housekeeper last ran a maintenance action the `action` matcher selects; yellow after `limit` seconds. */
function sinceMaintenanceStat(title: string, description: string, action: string, limit: number): StatBuilder {
  return stat(title, 's', description)
    .span(8)
    .withTarget(instant(`time() - max by (target) (faiss_index_last_maintenance_timestamp_seconds${sel(action)})`, '{{target}}'))
    .thresholds(steps('green', [limit, 'yellow']))
    .noValue('never');
}

function rows(d: dashboard.DashboardBuilder): void {
  const s = sel();
  const m = r.faissMaintenanceSeconds;

  d.withRow(row('Health'))
    .withPanel(faissLoadableStat('Loadable', 'Whether FAISS loads the index file: BROKEN when missing, truncated or corrupt (the runbook rebuilds it).'))
    .withPanel(
      faissRecallStat(
        'Recall@10',
        `Recall@10 against exact search over a sample of the index's own vectors; red under the default recall_floor (${r.faissRecallFloorDefault * 100}%). The alert uses each index's own floor (drawn below).`,
      ),
    )
    .withPanel(
      stat('Vectors', 'short', 'Vectors in the index (ntotal).').withTarget(instant(`max by (target) (faiss_index_vectors${s})`, '{{target}}')).thresholds(steps('blue')),
    )
    .withPanel(
      stat('Missing from the index', 'percentunit', `Source rows missing from the index, as a share of the source rows (negative: vectors whose rows are gone). The alert fires over ${r.faissMissingRatio * 100}%.`)
        .withTarget(instant(`max by (target) (faiss_index_source_gap${s} / (faiss_index_source_rows${s} > 0))`, '{{target}}'))
        .thresholds(steps('green', [r.faissMissingRatio, 'yellow']))
        .decimals(2),
    )
    .withPanel(
      stat('Last check', 's', 'Time since the last check of the index finished (load, probes, recall, source count).')
        .withTarget(instant(`time() - max by (target) (faiss_index_check_timestamp_seconds${s})`, '{{target}}'))
        .thresholds(higherIsWorse(3600, 6 * 3600)),
    )
    .withPanel(
      yesNoStat('Check', 'Whether the last check ran to its end (FAILED: the check process crashed or timed out; its recall and counts are stale).', 'OK', 'FAILED', 'yellow').withTarget(
        instant(`min by (target) (faiss_index_check_success${s})`, '{{target}}'),
      ),
    );

  d.withRow(row('Quality and size'))
    .withPanel(
      withThresholdLines(timeseries('Recall@10 and its floor', 'percentunit', 'Recall@10 of each index, and the configured floor under which it needs attention.').min(0).max(1), lowerIsWorse(r.faissRecallFloorDefault))
        .withTarget(query(`min by (target) (faiss_index_recall_at_10${s})`, '{{target}}'))
        .withTarget(query(`max by (target) (faiss_index_recall_floor${s})`, '{{target}} floor')),
    )
    .withPanel(
      timeseries('Search latency', 's', 'Median latency of a single-query 10-NN search in the last check.').withTarget(
        query(`max by (target) (faiss_index_probe_latency_seconds${s})`, '{{target}}'),
      ),
    )
    .withPanel(
      timeseries('Vectors and source rows', 'short', 'Vectors in the index and rows of the source table with a vector.')
        .withTarget(query(`max by (target) (faiss_index_vectors${s})`, '{{target}} vectors'))
        .withTarget(query(`max by (target) (faiss_index_source_rows${s})`, '{{target}} source rows')),
    )
    .withPanel(
      timeseries('Index file size', 'bytes', 'Size of the index file.').withTarget(query(`max by (target) (faiss_index_file_size_bytes${s})`, '{{target}}')),
    );

  d.withRow(row('Maintenance'))
    .withPanel(
      sinceMaintenanceStat(
        'Since retrain',
        `Time since housekeeper last retrained or rebuilt the index (a rebuild retrains). Runbook: weekly (Wednesday); the alert fires after ${m.retrain / DAY} days.`,
        'action=~"retrain|rebuild"',
        m.retrain,
      ),
    )
    .withPanel(sinceMaintenanceStat('Since optimize', `Time since housekeeper last optimized the index. Runbook: monthly; yellow after ${m.optimize / DAY} days (no alert).`, 'action="optimize"', m.optimize))
    .withPanel(
      sinceMaintenanceStat('Since rebuild', `Time since housekeeper last rebuilt the index. Runbook: quarterly or on corruption; the alert fires after ${m.rebuild / DAY} days.`, 'action="rebuild"', m.rebuild),
    )
    .withPanel(
      columnUnit(
        columns(
          table('Indexes', 'short', 'Each index: type and metric, dimension, IVF lists and probes, whether trained, and when the file last changed.')
            .withTarget(tableQuery(`max by (target, type, metric) (faiss_index_info${s})`).refId('info'))
            .withTarget(tableQuery(`max by (target) (faiss_index_dimension${s})`).refId('dimension'))
            .withTarget(tableQuery(`max by (target) (faiss_index_ivf_lists${s})`).refId('lists'))
            .withTarget(tableQuery(`max by (target) (faiss_index_ivf_probes${s})`).refId('probes'))
            .withTarget(tableQuery(`max by (target) (faiss_index_trained${s})`).refId('trained'))
            .withTarget(tableQuery(`time() - max by (target) (faiss_index_file_modified_timestamp_seconds${s})`).refId('modified')),
          {
            rename: {
              'Value #info': 'info',
              'Value #dimension': 'dimension',
              'Value #lists': 'nlist',
              'Value #probes': 'nprobe',
              'Value #trained': 'trained',
              'Value #modified': 'file changed',
            },
          },
        ),
        'file changed',
        's',
      ).overrideByName('info', [{ id: 'custom.hidden', value: true }]),
    );
}
