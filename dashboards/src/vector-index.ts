// The FAISS vector indexes: loadable, vectors against the source table, recall against its
// floor, search latency, and the runbook's maintenance calendar (retrain weekly, optimize
// monthly, rebuild quarterly or on corruption).
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import {
  columns,
  columnUnit,
  finish,
  higherIsWorse,
  housekeeperDashboard,
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
  yesNo,
} from './common.ts';
import { DAY, runbook as r } from './runbook.ts';

export const uid = 'housekeeper-vector-index';

export function build(): dashboard.Dashboard {
  const s = sel();
  const m = r.faissMaintenanceSeconds;
  const d = housekeeperDashboard({
    uid,
    title: 'Housekeeper / Vector index (FAISS)',
    description: 'FAISS indexes: loadable, vectors against the source table, recall@10 against its floor, search latency, checks and maintenance.',
    targetSelector: 'faiss_index_loadable',
    tags: ['faiss'],
  });

  d.withRow(row('Health'))
    .withPanel(
      stat('Loadable', 'none', 'Whether FAISS loads the index file: BROKEN when missing, truncated or corrupt (the runbook rebuilds it).')
        .withTarget(instant(`min by (target) (faiss_index_loadable${s})`, '{{target}}'))
        .mappings(yesNo('OK', 'BROKEN'))
        .thresholds(steps('red', [1, 'green'])),
    )
    .withPanel(
      stat('Recall@10', 'percentunit', 'Recall@10 against exact search over a sample of the index\'s own vectors; red under the default floor of 90% (see the floor per index below).')
        .withTarget(instant(`min by (target) (faiss_index_recall_at_10${s})`, '{{target}}'))
        .thresholds(lowerIsWorse(0.9))
        .decimals(1),
    )
    .withPanel(
      stat('Vectors', 'short', 'Vectors in the index (ntotal).').withTarget(instant(`max by (target) (faiss_index_vectors${s})`, '{{target}}')).thresholds(steps('blue')),
    )
    .withPanel(
      stat('Missing from the index', 'short', 'Source rows minus vectors in the index: positive means rows missing from the index, negative means vectors whose rows are gone.')
        .withTarget(instant(`max by (target) (faiss_index_source_gap${s})`, '{{target}}'))
        .thresholds(steps('red', [-0.5, 'green'], [0.5, 'yellow'])),
    )
    .withPanel(
      stat('Last check', 's', 'Time since the last check of the index finished (load, probes, recall, source count).')
        .withTarget(instant(`time() - max by (target) (faiss_index_check_timestamp_seconds${s})`, '{{target}}'))
        .thresholds(higherIsWorse(3600, 6 * 3600)),
    )
    .withPanel(
      stat('Check', 'none', 'Whether the last check ran to its end (FAILED: the check process crashed or timed out).')
        .withTarget(instant(`min by (target) (faiss_index_check_success${s})`, '{{target}}'))
        .mappings(yesNo('OK', 'FAILED'))
        .thresholds(steps('red', [1, 'green'])),
    );

  d.withRow(row('Quality and size'))
    .withPanel(
      withThresholdLines(timeseries('Recall@10 and its floor', 'percentunit', 'Recall@10 of each index, and the configured floor under which it needs attention.').min(0).max(1), lowerIsWorse(0.9))
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
      stat('Since retrain', 's', `Time since housekeeper last retrained the index. Runbook: weekly (Wednesday); red after ${m.retrain / DAY} days.`)
        .span(8)
        .withTarget(instant(`time() - max by (target) (faiss_index_last_maintenance_timestamp_seconds${sel('action="retrain"')})`, '{{target}}'))
        .thresholds(higherIsWorse(m.retrain))
        .noValue('never'),
    )
    .withPanel(
      stat('Since optimize', 's', `Time since housekeeper last optimized the index. Runbook: monthly; red after ${m.optimize / DAY} days.`)
        .span(8)
        .withTarget(instant(`time() - max by (target) (faiss_index_last_maintenance_timestamp_seconds${sel('action="optimize"')})`, '{{target}}'))
        .thresholds(higherIsWorse(m.optimize))
        .noValue('never'),
    )
    .withPanel(
      stat('Since rebuild', 's', `Time since housekeeper last rebuilt the index. Runbook: quarterly or on corruption; red after ${m.rebuild / DAY} days.`)
        .span(8)
        .withTarget(instant(`time() - max by (target) (faiss_index_last_maintenance_timestamp_seconds${sel('action="rebuild"')})`, '{{target}}'))
        .thresholds(higherIsWorse(m.rebuild))
        .noValue('never'),
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

  return finish(d);
}
