import type { ElasticsearchTarget } from '../targets/elasticsearch.ts';
import { describeError, isIndexNotFound, step } from '../targets/elasticsearch-errors.ts';
import type { MetricFactory } from '../metrics/registry.ts';
import { defineCollector, type CollectContext } from './collector.ts';
import { declareNodeMetrics, NODE_STATS_METRICS, stageNodeStats } from './elasticsearch-nodes.ts';

// Elasticsearch, with elasticsearch_exporter's names where it has the metric (cluster health,
// snapshot stats) and an `elasticsearch_index_pattern_` family for the runbook's retention check,
// which the exporter has no equivalent for. Three read-only APIs, one request each per scrape
// (one per index pattern), through the official client:
//
// - GET /_cluster/health
//   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-cluster-health
//   { cluster_name, status: green|yellow|red, timed_out, number_of_nodes, number_of_data_nodes,
//     active_primary_shards, active_shards, relocating_shards, initializing_shards,
//     unassigned_shards, delayed_unassigned_shards, number_of_pending_tasks, ... }
// - GET /_cat/indices/{pattern}?format=json&bytes=b&h=index,status,creation.date,store.size&expand_wildcards=all
//   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-cat-indices
//   [{ "index": "logs-2024.01.01", "status": "open", "creation.date": "1704067200000", "store.size": "1234" }]
//   Every value is a string; store.size is null for a closed index. A wildcard that matches
//   nothing gives []; a concrete name that does not exist gives 404 index_not_found_exception,
//   which here means "no indices", not a failure. Elastic steers applications towards the index
//   APIs; _cat/indices is used because it is one request per pattern that covers closed indices
//   (which still hold disk and still need deleting), where _settings + _stats would be two and
//   _stats refuses closed ones. `expand_wildcards=all` so data-stream backing indices (hidden)
//   and closed indices count.
// - GET /_snapshot/{repository}/_all?sort=start_time&order=desc&size=25&index_names=false
//   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-snapshot-get
//   { snapshots: [{ snapshot, uuid, version, state: SUCCESS|PARTIAL|FAILED|IN_PROGRESS|INCOMPATIBLE,
//     start_time_in_millis, end_time_in_millis, shards: { total, failed, successful }, ... }],
//     total, remaining }
//   Newest first and bounded (the exporter lists every snapshot of the repository); `total`
//   counts them all. The `state` filter would find the last success exactly but needs 9.1.
// - GET /_nodes/stats/{metric}: every node's JVM, file system, indices, thread pool, breaker,
//   OS, process and transport statistics, in elasticsearch-nodes.ts. Its failure (a user
//   without the `monitor` privilege gets 403) sets elasticsearch_node_stats_up 0 and leaves
//   the rest of the collection standing.

/** Snapshots read per scrape; the last success is looked for among these. */
export const SNAPSHOT_WINDOW = 25;
const COLORS = ['green', 'yellow', 'red'] as const;

function declare(f: MetricFactory) {
  const g = f.gauge.bind(f);
  const cl = ['cluster'];
  const pat = ['pattern'];
  const snap = ['repository', 'state', 'version'];
  return {
    up: g(
      'elasticsearch_cluster_health_up',
      'Whether the last collection from the cluster succeeded (1) or not (0): cluster health and every configured index pattern and snapshot query.',
    ),
    status: g('elasticsearch_cluster_health_status', 'Cluster health status: 1 for the current color, 0 for the others.', ['cluster', 'color']),
    nodes: g('elasticsearch_cluster_health_number_of_nodes', 'Nodes in the cluster.', cl),
    dataNodes: g('elasticsearch_cluster_health_number_of_data_nodes', 'Data nodes in the cluster.', cl),
    activePrimary: g('elasticsearch_cluster_health_active_primary_shards', 'Active primary shards.', cl),
    active: g('elasticsearch_cluster_health_active_shards', 'Active shards, primaries and replicas.', cl),
    relocating: g('elasticsearch_cluster_health_relocating_shards', 'Shards moving from one node to another.', cl),
    initializing: g('elasticsearch_cluster_health_initializing_shards', 'Shards being initialized.', cl),
    unassigned: g('elasticsearch_cluster_health_unassigned_shards', 'Shards not allocated to any node.', cl),
    delayed: g('elasticsearch_cluster_health_delayed_unassigned_shards', 'Unassigned shards whose allocation is delayed.', cl),
    pending: g('elasticsearch_cluster_health_number_of_pending_tasks', 'Cluster-level changes not yet executed.', cl),
    patternIndices: g('elasticsearch_index_pattern_indices', 'Indices matching the configured pattern (open and closed, data-stream backing indices included).', pat),
    patternSize: g('elasticsearch_index_pattern_store_size_bytes', 'Store size of the indices matching the pattern, replicas included (closed indices count 0).', pat),
    patternOldest: g('elasticsearch_index_pattern_oldest_index_age_seconds', 'Age of the oldest matching index, from its creation date (absent when none match).', pat),
    patternPast: g('elasticsearch_index_pattern_indices_past_retention', 'Matching indices created longer ago than the retention.', pat),
    patternRetention: g('elasticsearch_index_pattern_retention_seconds', 'The configured retention for the pattern (runbook: 30 days).', pat),
    snapshots: g('elasticsearch_snapshot_stats_number_of_snapshots', 'Snapshots in the repository.', ['repository']),
    latestOk: g(
      'elasticsearch_snapshot_stats_latest_snapshot_timestamp_seconds',
      `Start time of the latest SUCCESS or PARTIAL snapshot among the newest ${SNAPSHOT_WINDOW}, seconds since epoch (0: none).`,
      ['repository'],
    ),
    lastStart: g('elasticsearch_snapshot_stats_snapshot_start_time_timestamp', 'Start time of the newest snapshot, whatever its state, seconds since epoch.', snap),
    lastEnd: g('elasticsearch_snapshot_stats_snapshot_end_time_timestamp', 'End time of the newest snapshot, seconds since epoch (absent while it runs).', snap),
    lastFailedShards: g('elasticsearch_snapshot_stats_snapshot_failed_shards', 'Failed shards of the newest snapshot.', snap),
    nodeStats: declareNodeMetrics(f),
  };
}
type Metrics = ReturnType<typeof declare>;

async function collectPattern(ctx: CollectContext<ElasticsearchTarget>, m: Metrics, pattern: string, now: number): Promise<void> {
  const t = ctx.target;
  const rows = await step(`GET /_cat/indices/${pattern}`, async () => {
    try {
      return await t.client.cat.indices(
        { index: pattern, format: 'json', bytes: 'b', h: ['index', 'status', 'creation.date', 'store.size'], expand_wildcards: 'all' },
        { signal: ctx.signal },
      );
    } catch (err) {
      if (isIndexNotFound(err)) return [];
      throw err;
    }
  });
  let size = 0;
  let oldest: number | undefined;
  let past = 0;
  for (const r of rows) {
    const bytes = Number(r['store.size'] ?? 0);
    if (Number.isFinite(bytes)) size += bytes;
    const created = Number(r['creation.date']);
    if (!Number.isFinite(created) || created <= 0) continue;
    if (oldest === undefined || created < oldest) oldest = created;
    if (now - created > t.retentionMs) past++;
  }
  const labels = { pattern };
  ctx.set(m.patternIndices, labels, rows.length);
  ctx.set(m.patternSize, labels, size);
  ctx.set(m.patternPast, labels, past);
  ctx.set(m.patternRetention, labels, t.retentionMs / 1000);
  if (oldest !== undefined) ctx.set(m.patternOldest, labels, Math.max(0, (now - oldest) / 1000));
}

/** The last node-stats failure per target, so a lasting one is logged at warn once. */
const nodeStatsErrors = new WeakMap<ElasticsearchTarget, string>();

async function collectNodeStats(ctx: CollectContext<ElasticsearchTarget>, m: Metrics): Promise<void> {
  const t = ctx.target;
  const where = { target: t.name, request: 'GET /_nodes/stats' };
  let res;
  try {
    res = await t.client.nodes.stats({ metric: NODE_STATS_METRICS }, { signal: ctx.signal });
  } catch (err) {
    // The deadline is the whole collection's, not this request's.
    if (ctx.signal.aborted) throw err;
    ctx.set(m.nodeStats.up, {}, 0);
    const msg = describeError(err);
    if (nodeStatsErrors.get(t) !== msg) ctx.log.warn({ ...where, err: msg }, 'node stats failed');
    else ctx.log.debug({ ...where, err: msg }, 'node stats failed');
    nodeStatsErrors.set(t, msg);
    return;
  }
  if (nodeStatsErrors.delete(t)) ctx.log.info(where, 'node stats recovered');
  ctx.set(m.nodeStats.up, {}, 1);
  stageNodeStats(ctx, m.nodeStats, res);
}

async function collectSnapshots(ctx: CollectContext<ElasticsearchTarget>, m: Metrics, repository: string): Promise<void> {
  const res = await step(`GET /_snapshot/${repository}/_all`, () =>
    ctx.target.client.snapshot.get(
      { repository, snapshot: '_all', sort: 'start_time', order: 'desc', size: SNAPSHOT_WINDOW, index_names: false },
      { signal: ctx.signal },
    ),
  );
  const list = res.snapshots ?? [];
  ctx.set(m.snapshots, { repository }, res.total ?? list.length);
  const ok = list.find((s) => s.state === 'SUCCESS' || s.state === 'PARTIAL');
  ctx.set(m.latestOk, { repository }, ok?.start_time_in_millis !== undefined ? Number(ok.start_time_in_millis) / 1000 : 0);
  const newest = list[0];
  if (newest) {
    const labels = { repository, state: newest.state ?? '', version: newest.version ?? '' };
    if (newest.start_time_in_millis !== undefined) ctx.set(m.lastStart, labels, Number(newest.start_time_in_millis) / 1000);
    // An in-progress snapshot reports end_time_in_millis 0.
    if (newest.end_time_in_millis !== undefined && Number(newest.end_time_in_millis) > 0) {
      ctx.set(m.lastEnd, labels, Number(newest.end_time_in_millis) / 1000);
    }
    ctx.set(m.lastFailedShards, labels, newest.shards?.failed ?? 0);
  }
}

export default defineCollector<ElasticsearchTarget, Metrics>({
  name: 'elasticsearch',
  enabledByDefault: true,
  targets: (t) => t.elasticsearch,
  metrics: declare,
  up: (m) => m.up,
  async collect(ctx, m) {
    const t = ctx.target;
    // Health first: when the cluster cannot answer it, the other requests are not sent.
    const h = await step('GET /_cluster/health', () => t.client.cluster.health({}, { signal: ctx.signal }));
    const cluster = { cluster: h.cluster_name };
    for (const color of COLORS) ctx.set(m.status, { ...cluster, color }, h.status.toLowerCase() === color ? 1 : 0);
    ctx.set(m.nodes, cluster, h.number_of_nodes);
    ctx.set(m.dataNodes, cluster, h.number_of_data_nodes);
    ctx.set(m.activePrimary, cluster, h.active_primary_shards);
    ctx.set(m.active, cluster, h.active_shards);
    ctx.set(m.relocating, cluster, h.relocating_shards);
    ctx.set(m.initializing, cluster, h.initializing_shards);
    ctx.set(m.unassigned, cluster, h.unassigned_shards);
    ctx.set(m.delayed, cluster, h.delayed_unassigned_shards);
    ctx.set(m.pending, cluster, h.number_of_pending_tasks);
    const now = Date.now();
    // The client's pool (2 sockets) bounds how many of these run at once.
    await Promise.all([
      collectNodeStats(ctx, m),
      ...t.indexPatterns.map((p) => collectPattern(ctx, m, p, now)),
      ...(t.snapshotRepository !== undefined ? [collectSnapshots(ctx, m, t.snapshotRepository)] : []),
    ]);
  },
});
