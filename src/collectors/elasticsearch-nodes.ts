import type { estypes } from '@elastic/elasticsearch';
import type { Family, MetricFactory } from '../metrics/registry.ts';
import type { CollectContext, LabelValues } from './collector.ts';

// Node statistics for the Elasticsearch collector, under elasticsearch_exporter's names, labels
// and units, so its community dashboards (grafana.com 2322, 14191, the elasticsearch mixin) and
// awesome-prometheus-alerts' Elasticsearch rules work unchanged. One request per scrape:
//
// - GET /_nodes/stats/{metric}  https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-nodes-stats
//   { _nodes: { total, successful, failed }, cluster_name, nodes: { <id>: { name, host, roles,
//     indices, os, process, jvm, thread_pool, fs, transport, breakers, ... } } }
//   Only the sections read here are asked for: `http` would bring a list of every recent client
//   connection, `ingest` and `discovery` per-pipeline and per-action tables. Sizes are
//   `*_in_bytes`, durations `*_in_millis` (published in seconds), percentages integers.
//
// Every node of the cluster is read, as the exporter does with --es.all: one series set per
// node. Thread pools, circuit breakers, memory pools, buffer pools and GC collectors are fixed
// sets in Elasticsearch (created at start, not by load); data paths are the node's path.data.

/** The node-stats sections asked for. */
export const NODE_STATS_METRICS: estypes.NodesStatsNodeStatsMetric[] = ['indices', 'os', 'process', 'jvm', 'thread_pool', 'fs', 'transport', 'breaker'];

type Node = estypes.NodesStats;
type Sample = readonly [LabelValues, number | undefined];

interface FamilySpec {
  name: string;
  kind: 'gauge' | 'counter';
  help: string;
  /** Labels beyond the node's own. */
  labels: readonly string[];
  samples(n: Node): readonly Sample[];
}

/** The exporter's node labels: which cluster and node, and the node's roles as "true"/"false". */
const NODE_LABELS = ['cluster', 'host', 'name', 'es_master_node', 'es_data_node', 'es_ingest_node', 'es_client_node'];

function nodeLabels(cluster: string, n: Node): LabelValues {
  const roles: readonly string[] = n.roles ?? [];
  return {
    cluster,
    host: n.host ?? '',
    name: n.name ?? '',
    es_master_node: String(roles.includes('master')),
    // Data tiers (data_hot, data_content, ...) hold shards too; the exporter looks for "data"
    // only, which 8.x nodes configured with tiers alone lack.
    es_data_node: String(roles.some((r) => r === 'data' || r.startsWith('data_'))),
    es_ingest_node: String(roles.includes('ingest')),
    // The exporter says "true" when the node reports HTTP stats; every node has served HTTP
    // since 7.0 (http.enabled is gone), so every node is a client node in its terms.
    es_client_node: 'true',
  };
}

const seconds = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : ms / 1000);
const one = (v: number | undefined): readonly Sample[] => [[{}, v]];

function node(name: string, kind: FamilySpec['kind'], help: string, value: (n: Node) => number | undefined): FamilySpec {
  return { name, kind, help, labels: [], samples: (n) => one(value(n)) };
}

/** One sample per entry of a record the node reports (pools, breakers, collectors). */
function each<T>(label: string, record: (n: Node) => Record<string, T> | undefined, value: (t: T) => number | undefined): (n: Node) => Sample[] {
  return (n) => Object.entries(record(n) ?? {}).map(([key, t]) => [{ [label]: key }, value(t)] as const);
}

const FIXED_SET = 'a fixed set per Elasticsearch version';

const JVM: FamilySpec[] = [
  {
    name: 'elasticsearch_jvm_memory_used_bytes',
    kind: 'gauge',
    help: 'JVM memory currently used, by area (heap, non-heap).',
    labels: ['area'],
    samples: (n) => [
      [{ area: 'heap' }, n.jvm?.mem?.heap_used_in_bytes],
      [{ area: 'non-heap' }, n.jvm?.mem?.non_heap_used_in_bytes],
    ],
  },
  {
    name: 'elasticsearch_jvm_memory_committed_bytes',
    kind: 'gauge',
    help: 'JVM memory currently committed, by area (heap, non-heap).',
    labels: ['area'],
    samples: (n) => [
      [{ area: 'heap' }, n.jvm?.mem?.heap_committed_in_bytes],
      [{ area: 'non-heap' }, n.jvm?.mem?.non_heap_committed_in_bytes],
    ],
  },
  {
    name: 'elasticsearch_jvm_memory_max_bytes',
    kind: 'gauge',
    help: 'JVM memory max (area heap: the node\'s -Xmx).',
    labels: ['area'],
    samples: (n) => [[{ area: 'heap' }, n.jvm?.mem?.heap_max_in_bytes]],
  },
  ...(
    [
      ['used_bytes', 'currently used', 'used_in_bytes'],
      ['max_bytes', 'max (0 when the pool has none, as G1\'s young pools)', 'max_in_bytes'],
      ['peak_used_bytes', 'peak used', 'peak_used_in_bytes'],
      ['peak_max_bytes', 'peak max', 'peak_max_in_bytes'],
    ] as const
  ).map(
    ([suffix, what, field]): FamilySpec => ({
      name: `elasticsearch_jvm_memory_pool_${suffix}`,
      kind: 'gauge',
      help: `JVM memory ${what}, by pool (young, survivor, old).`,
      labels: ['pool'],
      samples: each('pool', (n) => n.jvm?.mem?.pools, (p) => p[field]),
    }),
  ),
  {
    name: 'elasticsearch_jvm_buffer_pool_used_bytes',
    kind: 'gauge',
    help: 'JVM buffer pool memory used, by type (direct, mapped, ...).',
    labels: ['type'],
    samples: each('type', (n) => n.jvm?.buffer_pools, (b) => b.used_in_bytes),
  },
  {
    name: 'elasticsearch_jvm_gc_collection_seconds_count',
    kind: 'counter',
    help: 'JVM garbage collections, by collector (young, old).',
    labels: ['gc'],
    samples: each('gc', (n) => n.jvm?.gc?.collectors, (c) => c.collection_count),
  },
  {
    name: 'elasticsearch_jvm_gc_collection_seconds_sum',
    kind: 'counter',
    help: 'Time spent in JVM garbage collection, seconds, by collector (young, old).',
    labels: ['gc'],
    samples: each('gc', (n) => n.jvm?.gc?.collectors, (c) => seconds(c.collection_time_in_millis)),
  },
];

const FILESYSTEM: FamilySpec[] = (
  [
    ['size_bytes', 'Size', 'total_in_bytes'],
    ['free_bytes', 'Free space', 'free_in_bytes'],
    ['available_bytes', 'Space available to Elasticsearch (free less what the OS reserves)', 'available_in_bytes'],
  ] as const
).map(([suffix, what, field]) => ({
  name: `elasticsearch_filesystem_data_${suffix}`,
  kind: 'gauge',
  help: `${what} of the file store of each data path, bytes.`,
  labels: ['mount', 'path'],
  samples: (n: Node) => (n.fs?.data ?? []).map((d) => [{ mount: d.mount ?? '', path: d.path ?? '' }, d[field]] as const),
}));

const ix = (n: Node): estypes.IndicesStatsShardStats | undefined => n.indices;

const INDICES: FamilySpec[] = [
  node('elasticsearch_indices_docs', 'gauge', 'Documents in the shards on this node.', (n) => ix(n)?.docs?.count),
  node('elasticsearch_indices_docs_deleted', 'gauge', 'Deleted documents not yet merged away, in the shards on this node.', (n) => ix(n)?.docs?.deleted),
  node('elasticsearch_indices_store_size_bytes', 'gauge', 'Size of the shards stored on this node, bytes.', (n) => ix(n)?.store?.size_in_bytes),
  node('elasticsearch_indices_indexing_index_total', 'counter', 'Documents indexed.', (n) => ix(n)?.indexing?.index_total),
  node('elasticsearch_indices_indexing_index_time_seconds_total', 'counter', 'Time spent indexing, seconds.', (n) => seconds(ix(n)?.indexing?.index_time_in_millis)),
  node('elasticsearch_indices_indexing_delete_total', 'counter', 'Documents deleted.', (n) => ix(n)?.indexing?.delete_total),
  node('elasticsearch_indices_indexing_delete_time_seconds_total', 'counter', 'Time spent deleting documents, seconds.', (n) => seconds(ix(n)?.indexing?.delete_time_in_millis)),
  node('elasticsearch_indices_indexing_is_throttled', 'gauge', 'Whether indexing is throttled (1) or not (0).', (n) => {
    const t = ix(n)?.indexing?.is_throttled;
    return t === undefined ? undefined : t ? 1 : 0;
  }),
  node('elasticsearch_indices_indexing_throttle_time_seconds_total', 'counter', 'Time indexing was throttled, seconds.', (n) => seconds(ix(n)?.indexing?.throttle_time_in_millis)),
  node('elasticsearch_indices_search_query_total', 'counter', 'Search queries.', (n) => ix(n)?.search?.query_total),
  node('elasticsearch_indices_search_query_time_seconds', 'counter', 'Time spent in search queries, seconds.', (n) => seconds(ix(n)?.search?.query_time_in_millis)),
  node('elasticsearch_indices_search_fetch_total', 'counter', 'Search fetches.', (n) => ix(n)?.search?.fetch_total),
  node('elasticsearch_indices_search_fetch_time_seconds', 'counter', 'Time spent in search fetches, seconds.', (n) => seconds(ix(n)?.search?.fetch_time_in_millis)),
  node('elasticsearch_indices_search_scroll_total', 'counter', 'Search scrolls.', (n) => ix(n)?.search?.scroll_total),
  node('elasticsearch_indices_search_scroll_time_seconds', 'counter', 'Time scroll contexts were held open, seconds.', (n) => seconds(ix(n)?.search?.scroll_time_in_millis)),
  node('elasticsearch_indices_search_suggest_total', 'counter', 'Suggest requests.', (n) => ix(n)?.search?.suggest_total),
  node('elasticsearch_indices_search_suggest_time_seconds', 'counter', 'Time spent in suggest requests, seconds.', (n) => seconds(ix(n)?.search?.suggest_time_in_millis)),
  node('elasticsearch_indices_get_total', 'counter', 'Get requests.', (n) => ix(n)?.get?.total),
  node('elasticsearch_indices_get_time_seconds', 'counter', 'Time spent in get requests, seconds.', (n) => seconds(ix(n)?.get?.time_in_millis)),
  node('elasticsearch_indices_get_exists_total', 'counter', 'Get requests that found the document.', (n) => ix(n)?.get?.exists_total),
  node('elasticsearch_indices_get_exists_time_seconds', 'counter', 'Time spent in get requests that found the document, seconds.', (n) => seconds(ix(n)?.get?.exists_time_in_millis)),
  node('elasticsearch_indices_get_missing_total', 'counter', 'Get requests that did not find the document.', (n) => ix(n)?.get?.missing_total),
  node('elasticsearch_indices_get_missing_time_seconds', 'counter', 'Time spent in get requests that did not find the document, seconds.', (n) => seconds(ix(n)?.get?.missing_time_in_millis)),
  node('elasticsearch_indices_merges_total', 'counter', 'Merges.', (n) => ix(n)?.merges?.total),
  node('elasticsearch_indices_merges_current', 'gauge', 'Merges running.', (n) => ix(n)?.merges?.current),
  node('elasticsearch_indices_merges_current_size_in_bytes', 'gauge', 'Size of the segments being merged, bytes.', (n) => ix(n)?.merges?.current_size_in_bytes),
  node('elasticsearch_indices_merges_docs_total', 'counter', 'Documents merged.', (n) => ix(n)?.merges?.total_docs),
  node('elasticsearch_indices_merges_total_size_bytes_total', 'counter', 'Size of the segments merged, bytes.', (n) => ix(n)?.merges?.total_size_in_bytes),
  node('elasticsearch_indices_merges_total_time_seconds_total', 'counter', 'Time spent merging, seconds.', (n) => seconds(ix(n)?.merges?.total_time_in_millis)),
  node('elasticsearch_indices_merges_total_throttled_time_seconds_total', 'counter', 'Time merges were throttled, seconds.', (n) => seconds(ix(n)?.merges?.total_throttled_time_in_millis)),
  node('elasticsearch_indices_refresh_total', 'counter', 'Refreshes.', (n) => ix(n)?.refresh?.total),
  node('elasticsearch_indices_refresh_time_seconds_total', 'counter', 'Time spent refreshing, seconds.', (n) => seconds(ix(n)?.refresh?.total_time_in_millis)),
  node('elasticsearch_indices_flush_total', 'counter', 'Flushes.', (n) => ix(n)?.flush?.total),
  node('elasticsearch_indices_flush_time_seconds', 'counter', 'Time spent flushing, seconds.', (n) => seconds(ix(n)?.flush?.total_time_in_millis)),
  node('elasticsearch_indices_warmer_total', 'counter', 'Index warmer runs.', (n) => ix(n)?.warmer?.total),
  node('elasticsearch_indices_warmer_time_seconds_total', 'counter', 'Time spent in index warmers, seconds.', (n) => seconds(ix(n)?.warmer?.total_time_in_millis)),
  node('elasticsearch_indices_segments_count', 'gauge', 'Segments in the shards on this node.', (n) => ix(n)?.segments?.count),
  node('elasticsearch_indices_segments_memory_bytes', 'gauge', 'Heap used by segments, bytes (near 0 since 8.0, which keeps them off heap).', (n) => ix(n)?.segments?.memory_in_bytes),
  node('elasticsearch_indices_fielddata_memory_size_bytes', 'gauge', 'Heap used by the field data cache, bytes.', (n) => ix(n)?.fielddata?.memory_size_in_bytes),
  node('elasticsearch_indices_fielddata_evictions', 'counter', 'Evictions from the field data cache.', (n) => ix(n)?.fielddata?.evictions),
  node('elasticsearch_indices_query_cache_memory_size_bytes', 'gauge', 'Heap used by the query cache, bytes.', (n) => ix(n)?.query_cache?.memory_size_in_bytes),
  node('elasticsearch_indices_query_cache_evictions', 'counter', 'Evictions from the query cache.', (n) => ix(n)?.query_cache?.evictions),
  node('elasticsearch_indices_query_cache_total', 'counter', 'Query cache lookups (hits and misses).', (n) => ix(n)?.query_cache?.total_count),
  node('elasticsearch_indices_query_cache_cache_size', 'gauge', 'Entries in the query cache.', (n) => ix(n)?.query_cache?.cache_size),
  node('elasticsearch_indices_query_cache_cache_total', 'counter', 'Entries ever added to the query cache.', (n) => ix(n)?.query_cache?.cache_count),
  {
    name: 'elasticsearch_indices_query_cache_count',
    kind: 'counter',
    help: 'Query cache lookups, by outcome (cache: hit, miss).',
    labels: ['cache'],
    samples: (n) => [
      [{ cache: 'hit' }, ix(n)?.query_cache?.hit_count],
      [{ cache: 'miss' }, ix(n)?.query_cache?.miss_count],
    ],
  },
  node('elasticsearch_indices_request_cache_memory_size_bytes', 'gauge', 'Heap used by the shard request cache, bytes.', (n) => ix(n)?.request_cache?.memory_size_in_bytes),
  node('elasticsearch_indices_request_cache_evictions', 'counter', 'Evictions from the shard request cache.', (n) => ix(n)?.request_cache?.evictions),
  {
    name: 'elasticsearch_indices_request_cache_count',
    kind: 'counter',
    help: 'Shard request cache lookups, by outcome (cache: hit, miss).',
    labels: ['cache'],
    samples: (n) => [
      [{ cache: 'hit' }, ix(n)?.request_cache?.hit_count],
      [{ cache: 'miss' }, ix(n)?.request_cache?.miss_count],
    ],
  },
  // The exporter types these two counters, but a flush shrinks the translog: gauges.
  node('elasticsearch_indices_translog_operations', 'gauge', 'Operations in the translog.', (n) => ix(n)?.translog?.operations),
  node('elasticsearch_indices_translog_size_in_bytes', 'gauge', 'Size of the translog, bytes.', (n) => ix(n)?.translog?.size_in_bytes),
];

const THREAD_POOL: FamilySpec[] = (
  [
    ['active_count', 'gauge', 'Threads running a task'],
    ['queue_count', 'gauge', 'Tasks queued'],
    ['rejected_count', 'counter', 'Tasks rejected (queue full)'],
    ['completed_count', 'counter', 'Tasks completed'],
    ['threads_count', 'gauge', 'Threads'],
    ['largest_count', 'gauge', 'Most threads ever active at once'],
  ] as const
).map(([suffix, kind, what]) => {
  const field = suffix.replace('_count', '') as keyof estypes.NodesThreadCount;
  return {
    name: `elasticsearch_thread_pool_${suffix}`,
    kind,
    help: `${what}, by thread pool (type: write, search, get, ...; ${FIXED_SET}).`,
    labels: ['type'],
    samples: each('type', (n) => n.thread_pool, (p) => p[field]),
  };
});

const BREAKERS: FamilySpec[] = (
  [
    ['estimated_size_bytes', 'gauge', 'Memory the circuit breaker estimates in use, bytes', 'estimated_size_in_bytes'],
    ['limit_size_bytes', 'gauge', 'Limit of the circuit breaker, bytes', 'limit_size_in_bytes'],
    ['tripped', 'counter', 'Times the circuit breaker tripped (rejected a request)', 'tripped'],
    ['overhead', 'gauge', 'Factor the circuit breaker multiplies estimates with', 'overhead'],
  ] as const
).map(([suffix, kind, what, field]) => ({
  name: `elasticsearch_breakers_${suffix}`,
  kind,
  help: `${what}, by breaker (parent, request, fielddata, inflight_requests, ...; ${FIXED_SET}).`,
  labels: ['breaker'],
  samples: each('breaker', (n) => n.breakers, (b) => b[field]),
}));

const OS_PROCESS_TRANSPORT: FamilySpec[] = [
  node('elasticsearch_os_cpu_percent', 'gauge', 'CPU used on the node\'s host, percent (0-100).', (n) => n.os?.cpu?.percent),
  node('elasticsearch_os_load1', 'gauge', 'Load average over 1 minute of the node\'s host.', (n) => n.os?.cpu?.load_average?.['1m']),
  node('elasticsearch_os_load5', 'gauge', 'Load average over 5 minutes of the node\'s host.', (n) => n.os?.cpu?.load_average?.['5m']),
  node('elasticsearch_os_load15', 'gauge', 'Load average over 15 minutes of the node\'s host.', (n) => n.os?.cpu?.load_average?.['15m']),
  node('elasticsearch_os_mem_free_bytes', 'gauge', 'Free physical memory of the node\'s host, bytes.', (n) => n.os?.mem?.free_in_bytes),
  node('elasticsearch_os_mem_used_bytes', 'gauge', 'Used physical memory of the node\'s host, bytes.', (n) => n.os?.mem?.used_in_bytes),
  node('elasticsearch_process_cpu_percent', 'gauge', 'CPU used by the Elasticsearch process, percent (0-100).', (n) => n.process?.cpu?.percent),
  node('elasticsearch_process_cpu_seconds_total', 'counter', 'CPU time used by the Elasticsearch process, seconds.', (n) => seconds(n.process?.cpu?.total_in_millis)),
  node('elasticsearch_process_open_files_count', 'gauge', 'File descriptors the process has open (-1: not supported).', (n) => n.process?.open_file_descriptors),
  node('elasticsearch_process_max_files_descriptors', 'gauge', 'File descriptors the process may open (-1: not supported).', (n) => n.process?.max_file_descriptors),
  node('elasticsearch_process_mem_virtual_size_bytes', 'gauge', 'Virtual memory of the process, bytes.', (n) => n.process?.mem?.total_virtual_in_bytes),
  node('elasticsearch_transport_rx_packets_total', 'counter', 'Packets received from other nodes.', (n) => n.transport?.rx_count),
  node('elasticsearch_transport_rx_size_bytes_total', 'counter', 'Bytes received from other nodes.', (n) => n.transport?.rx_size_in_bytes),
  node('elasticsearch_transport_tx_packets_total', 'counter', 'Packets sent to other nodes.', (n) => n.transport?.tx_count),
  node('elasticsearch_transport_tx_size_bytes_total', 'counter', 'Bytes sent to other nodes.', (n) => n.transport?.tx_size_in_bytes),
];

const FAMILIES: readonly FamilySpec[] = [...JVM, ...FILESYSTEM, ...INDICES, ...THREAD_POOL, ...BREAKERS, ...OS_PROCESS_TRANSPORT];

export interface NodeMetrics {
  up: Family;
  families: ReadonlyArray<{ spec: FamilySpec; metric: Family }>;
}

export function declareNodeMetrics(f: MetricFactory): NodeMetrics {
  return {
    up: f.gauge('elasticsearch_node_stats_up', 'Whether the last read of the nodes\' statistics (GET /_nodes/stats) succeeded (1) or not (0); the cluster health metrics do not depend on it.'),
    families: FAMILIES.map((spec) => {
      const labels = [...NODE_LABELS, ...spec.labels];
      const help = `${spec.help} Per node.`;
      return { spec, metric: spec.kind === 'counter' ? f.counter(spec.name, help, labels) : f.gauge(spec.name, help, labels) };
    }),
  };
}

/** Stages every node's samples (a node missing a section simply has no series for it). */
export function stageNodeStats(ctx: CollectContext<unknown>, m: NodeMetrics, res: estypes.NodesStatsResponse): void {
  const cluster = res.cluster_name ?? '';
  for (const n of Object.values(res.nodes ?? {})) {
    const base = nodeLabels(cluster, n);
    for (const { spec, metric } of m.families) {
      for (const [extra, v] of spec.samples(n)) {
        if (v === undefined || !Number.isFinite(v)) continue;
        // Counters are refilled by inc(); a negative one would throw in prom-client.
        if (spec.kind === 'counter' && v < 0) continue;
        ctx.set(metric, { ...base, ...extra }, v);
      }
    }
  }
}
