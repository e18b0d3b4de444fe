// The Elasticsearch log cluster (health, shards, retention of 30 days, snapshots) and the TLS
// certificates (days to expiry, checked 30 days ahead; chain verification).
// elasticsearch_exporter's and ssl_exporter's names.
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { certificateDaysLeftStat, elasticsearchHealthStat } from './check-stats.ts';
import type { TableBuilder } from './common.ts';
import {
  colorColumn,
  columns,
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
  upStat,
  withThresholdLines,
  yesNoStat,
  zeroIsGood,
} from './common.ts';
import { DAY, HOUR, runbook as r } from '../../src/runbook.ts';

export default defineDashboard({
  uid: 'housekeeper-elasticsearch-certificates',
  title: 'Housekeeper / Elasticsearch and certificates',
  description: 'The Elasticsearch log cluster (health, shards, index retention, snapshots) and TLS certificates (days to expiry, chain verification).',
  targetSelector: '{__name__=~"elasticsearch_cluster_health_up|ssl_probe_success"}',
  tags: ['elasticsearch', 'certificates'],
  rows,
});

/** A table of an info metric's labels (its value, always 1, hidden). */
function labelsTable(title: string, description: string, expr: string): TableBuilder {
  return table(title, 'none', description)
    .span(12)
    .withTarget(tableQuery(expr))
    .withTransformation({ id: 'organize', options: { excludeByName: { Time: true, Value: true } } });
}

function rows(d: dashboard.DashboardBuilder): void {
  const s = sel();

  d.withRow(row('Elasticsearch'))
    .withPanel(
      upStat('Cluster', 'Whether the last collection from the cluster succeeded (health, index patterns, snapshots).').withTarget(
        instant(`min by (target) (elasticsearch_cluster_health_up${s})`, '{{target}}'),
      ),
    )
    .withPanel(elasticsearchHealthStat('Health', 'Cluster health colour: yellow means replicas unassigned, red means primaries unassigned.'))
    .withPanel(
      stat('Unassigned shards', 'none', 'Shards not allocated to any node.')
        .withTarget(instant(`max by (target) (elasticsearch_cluster_health_unassigned_shards${s})`, '{{target}}'))
        .thresholds(zeroIsGood('yellow')),
    )
    .withPanel(
      stat('Oldest index past retention', 's', `How far the oldest index of each pattern is past its retention (runbook: delete after ${r.esRetentionSeconds / DAY} days); the daily cleanup keeps it under a day, the alert fires after one.`)
        .withTarget(
          instant(
            `clamp_min(max by (target, pattern) (elasticsearch_index_pattern_oldest_index_age_seconds${s} - elasticsearch_index_pattern_retention_seconds${s}), 0)`,
            '{{target}} {{pattern}}',
          ),
        )
        .thresholds(steps('green', [r.esPastRetentionGraceSeconds, 'yellow']))
        .decimals(1),
    )
    .withPanel(
      stat('Latest snapshot', 's', `Time since the latest successful (or partial) snapshot started. Runbook: snapshot daily; the alert fires after ${r.esSnapshotAgeSeconds.warn / HOUR} h.`)
        .withTarget(instant(`time() - max by (target, repository) (elasticsearch_snapshot_stats_latest_snapshot_timestamp_seconds${s})`, '{{target}} {{repository}}'))
        .thresholds(steps('green', [r.esSnapshotAgeSeconds.warn, 'yellow']))
        .decimals(1),
    )
    .withPanel(
      stat('Nodes', 'short', 'Nodes and data nodes in the cluster.')
        .withTarget(instant(`max by (target) (elasticsearch_cluster_health_number_of_nodes${s})`, '{{target}} nodes'))
        .withTarget(instant(`max by (target) (elasticsearch_cluster_health_number_of_data_nodes${s})`, '{{target}} data'))
        .thresholds(steps('blue')),
    )
    .withPanel(
      timeseries('Shards', 'short', 'Active, relocating, initializing and unassigned shards.')
        .withTarget(query(`max by (target) (elasticsearch_cluster_health_active_shards${s})`, '{{target}} active'))
        .withTarget(query(`max by (target) (elasticsearch_cluster_health_relocating_shards${s})`, '{{target}} relocating'))
        .withTarget(query(`max by (target) (elasticsearch_cluster_health_initializing_shards${s})`, '{{target}} initializing'))
        .withTarget(query(`max by (target) (elasticsearch_cluster_health_unassigned_shards${s})`, '{{target}} unassigned')),
    )
    .withPanel(
      timeseries('Pending tasks', 'short', 'Cluster-level changes not yet executed.').withTarget(
        query(`max by (target) (elasticsearch_cluster_health_number_of_pending_tasks${s})`, '{{target}}'),
      ),
    )
    .withPanel(
      timeseries('Store size by pattern', 'bytes', 'Store size of the indices matching each configured pattern, replicas included.').withTarget(
        query(`max by (target, pattern) (elasticsearch_index_pattern_store_size_bytes${s})`, '{{target}} {{pattern}}'),
      ),
    )
    .withPanel(
      withThresholdLines(timeseries('Oldest index age', 'd', `Age of the oldest index matching each pattern, in days. Runbook: delete after ${r.esRetentionSeconds / DAY} days.`).min(0), higherIsWorse(r.esRetentionSeconds / DAY))
        .withTarget(query(`max by (target, pattern) (elasticsearch_index_pattern_oldest_index_age_seconds${s}) / 86400`, '{{target}} {{pattern}}')),
    );

  d.withRow(row('Certificates'))
    .withPanel(
      certificateDaysLeftStat('Days left', `Days until the first certificate in each chain expires. Runbook: check ${r.certDays.warn} days ahead; red under ${r.certDays.crit}.`).span(12),
    )
    .withPanel(
      upStat('Probe', 'Whether the TLS handshake with the endpoint succeeded, or a certificate was read from the file.')
        .span(6)
        .withTarget(instant(`min by (target) (ssl_probe_success${s})`, '{{target}}')),
    )
    .withPanel(
      yesNoStat('Chain verifies', "Whether the endpoint's chain verifies against the trusted roots, is within its dates and matches the host name.", 'VERIFIED', 'NOT VERIFIED', 'yellow')
        .span(6)
        .withTarget(instant(`min by (target) (ssl_verified_chain${s})`, '{{target}}')),
    )
    .withPanel(
      colorColumn(
        columns(
          table('Certificates', 'd', "Every certificate of each endpoint's chain and each file, with the days it has left.").withTarget(
            tableQuery(
              `min by (target, file, cn, issuer_cn, serial_no, dnsnames) ((ssl_cert_not_after${s} or ssl_file_cert_not_after${s}) - time()) / 86400`,
            ),
          ),
          { rename: { Value: 'days left' }, sort: { field: 'days left', desc: false } },
        )
          .thresholds(lowerIsWorse(r.certDays.warn, r.certDays.crit))
          .decimals(0),
        'days left',
      ),
    )
    .withPanel(labelsTable('Verification errors', 'Why an endpoint\'s chain does not verify, as OpenSSL or Node names it.', `max by (target, error) (ssl_verify_error_info${s})`))
    .withPanel(labelsTable('TLS versions', 'The TLS version negotiated with each endpoint.', `max by (target, version) (ssl_tls_version_info${s})`));
}
