// The stand-in's GET /_nodes/stats: Elasticsearch 8's documented response shape
// (https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-nodes-stats; the
// official client's NodesStatsResponse types), built per node from a few knobs a test sets,
// the rest filled with plausible constants. Byte fields come as `*_in_bytes`, durations as
// `*_in_millis` and percentages as integers, as Elasticsearch reports them without `human`.
//
// - GET /_nodes/stats[/{metric}] and /_nodes/{node_id}/stats[/{metric}]: `metric` is a comma
//   list of the sections below or `_all`; an unknown one is 400 illegal_argument_exception.
//   Only the sections asked for are in each node's object (plus its name, host, roles ...).
// - `{ _nodes: { total, successful, failed }, cluster_name, nodes: { <id>: {...} } }`.
// - A node with `unreachable: true` is left out of `nodes` and counted in `_nodes.failed`,
//   with a `failures` entry, as Elasticsearch answers when a node does not respond in time.

export interface MockNode {
  id: string;
  name: string;
  /** The node's publish address (host and ip in the response). */
  host: string;
  /** Elasticsearch's role names: master, data, data_hot, data_content, ingest, ml, ... */
  roles: string[];
  unreachable?: boolean;
  heapUsedBytes: number;
  heapMaxBytes: number;
  nonHeapUsedBytes: number;
  /** Old-generation collections and their total time. */
  gcOldCount: number;
  gcOldMillis: number;
  /** The node's one data path. */
  fs: { path: string; mount: string; totalBytes: number; freeBytes: number; availableBytes: number };
  docs: number;
  storeBytes: number;
  indexTotal: number;
  indexTimeMillis: number;
  queryTotal: number;
  queryTimeMillis: number;
  /** Rejections of the write thread pool. */
  writeRejected: number;
  /** Trips of the parent circuit breaker. */
  parentTripped: number;
  osCpuPercent: number;
  processCpuPercent: number;
  processCpuMillis: number;
  openFileDescriptors: number;
}

/** The sections of a node's stats this stand-in answers (Elasticsearch has more). */
export const NODE_STATS_METRICS = ['indices', 'os', 'process', 'jvm', 'thread_pool', 'fs', 'transport', 'http', 'breaker'] as const;
type Section = (typeof NODE_STATS_METRICS)[number];

/** Thread pools of an 8.x node (a fixed set: Elasticsearch creates them at start). */
export const THREAD_POOLS = [
  'analyze',
  'fetch_shard_started',
  'fetch_shard_store',
  'flush',
  'force_merge',
  'generic',
  'get',
  'management',
  'refresh',
  'search',
  'search_throttled',
  'snapshot',
  'system_read',
  'system_write',
  'warmer',
  'write',
] as const;

/** Circuit breakers of an 8.x node (also fixed). */
export const BREAKERS = ['eql_sequence', 'fielddata', 'inflight_requests', 'model_inference', 'parent', 'request'] as const;

const GB = 1024 ** 3;

/** Two nodes of different roles: a master-eligible data/ingest node and a coordinating-only one. */
export function defaultNodes(): MockNode[] {
  return [
    {
      id: 'aBcD1234node1xxxxxxxxx',
      name: 'es-data-0',
      host: '10.0.0.11',
      roles: ['data', 'data_content', 'data_hot', 'ingest', 'master', 'remote_cluster_client'],
      heapUsedBytes: 1.5 * GB,
      heapMaxBytes: 4 * GB,
      nonHeapUsedBytes: 180_000_000,
      gcOldCount: 3,
      gcOldMillis: 420,
      fs: { path: '/usr/share/elasticsearch/data', mount: '/ (/dev/nvme0n1p1)', totalBytes: 500 * GB, freeBytes: 200 * GB, availableBytes: 180 * GB },
      docs: 1_234_567,
      storeBytes: 42 * GB,
      indexTotal: 987_654,
      indexTimeMillis: 123_456,
      queryTotal: 5_000,
      queryTimeMillis: 9_876,
      writeRejected: 0,
      parentTripped: 0,
      osCpuPercent: 12,
      processCpuPercent: 9,
      processCpuMillis: 3_600_000,
      openFileDescriptors: 812,
    },
    {
      id: 'eFgH5678node2xxxxxxxxx',
      name: 'es-coord-0',
      host: '10.0.0.21',
      roles: [],
      heapUsedBytes: 0.5 * GB,
      heapMaxBytes: 2 * GB,
      nonHeapUsedBytes: 120_000_000,
      gcOldCount: 0,
      gcOldMillis: 0,
      fs: { path: '/usr/share/elasticsearch/data', mount: '/ (/dev/nvme0n1p1)', totalBytes: 50 * GB, freeBytes: 45 * GB, availableBytes: 42 * GB },
      docs: 0,
      storeBytes: 0,
      indexTotal: 0,
      indexTimeMillis: 0,
      queryTotal: 0,
      queryTimeMillis: 0,
      writeRejected: 0,
      parentTripped: 0,
      osCpuPercent: 3,
      processCpuPercent: 1,
      processCpuMillis: 60_000,
      openFileDescriptors: 420,
    },
  ];
}

function indices(n: MockNode): unknown {
  return {
    docs: { count: n.docs, deleted: Math.floor(n.docs / 100) },
    shard_stats: { total_count: n.docs > 0 ? 10 : 0 },
    store: { size_in_bytes: n.storeBytes, total_data_set_size_in_bytes: n.storeBytes, reserved_in_bytes: 0 },
    indexing: {
      index_total: n.indexTotal,
      index_time_in_millis: n.indexTimeMillis,
      index_current: 0,
      index_failed: 0,
      delete_total: 17,
      delete_time_in_millis: 34,
      delete_current: 0,
      noop_update_total: 0,
      is_throttled: false,
      throttle_time_in_millis: 0,
      write_load: 0.01,
    },
    get: { total: 40, time_in_millis: 80, exists_total: 30, exists_time_in_millis: 60, missing_total: 10, missing_time_in_millis: 20, current: 0 },
    search: {
      open_contexts: 0,
      query_total: n.queryTotal,
      query_time_in_millis: n.queryTimeMillis,
      query_current: 0,
      fetch_total: Math.floor(n.queryTotal / 2),
      fetch_time_in_millis: Math.floor(n.queryTimeMillis / 4),
      fetch_current: 0,
      scroll_total: 5,
      scroll_time_in_millis: 5_000,
      scroll_current: 0,
      suggest_total: 0,
      suggest_time_in_millis: 0,
      suggest_current: 0,
    },
    merges: {
      current: 0,
      current_docs: 0,
      current_size_in_bytes: 0,
      total: 250,
      total_time_in_millis: 75_000,
      total_docs: 3_000_000,
      total_size_in_bytes: 9 * GB,
      total_stopped_time_in_millis: 0,
      total_throttled_time_in_millis: 1_500,
      total_auto_throttle_in_bytes: 20_971_520,
    },
    refresh: { total: 9_000, total_time_in_millis: 45_000, external_total: 8_000, external_total_time_in_millis: 46_000, listeners: 0 },
    flush: { total: 120, periodic: 100, total_time_in_millis: 6_000 },
    warmer: { current: 0, total: 8_500, total_time_in_millis: 900 },
    query_cache: { memory_size_in_bytes: 1_048_576, total_count: 700, hit_count: 500, miss_count: 200, cache_size: 40, cache_count: 60, evictions: 20 },
    fielddata: { memory_size_in_bytes: 2_048, evictions: 1 },
    completion: { size_in_bytes: 0 },
    segments: {
      count: n.docs > 0 ? 64 : 0,
      memory_in_bytes: 0,
      terms_memory_in_bytes: 0,
      stored_fields_memory_in_bytes: 0,
      term_vectors_memory_in_bytes: 0,
      norms_memory_in_bytes: 0,
      points_memory_in_bytes: 0,
      doc_values_memory_in_bytes: 0,
      index_writer_memory_in_bytes: 0,
      version_map_memory_in_bytes: 0,
      fixed_bit_set_memory_in_bytes: 0,
      max_unsafe_auto_id_timestamp: -1,
      file_sizes: {},
    },
    translog: { operations: 1_000, size_in_bytes: 4_096_000, uncommitted_operations: 10, uncommitted_size_in_bytes: 40_960, earliest_last_modified_age: 0 },
    request_cache: { memory_size_in_bytes: 8_192, evictions: 0, hit_count: 90, miss_count: 10 },
    recovery: { current_as_source: 0, current_as_target: 0, throttle_time_in_millis: 0 },
    bulk: { total_operations: 5_000, total_time_in_millis: 20_000, total_size_in_bytes: 50_000_000, avg_time_in_millis: 0, avg_size_in_bytes: 10_000 },
  };
}

function jvm(n: MockNode, now: number): unknown {
  const young = Math.floor(n.heapUsedBytes / 4);
  const survivor = Math.floor(n.heapUsedBytes / 32);
  const old = n.heapUsedBytes - young - survivor;
  const pool = (used: number, max: number) => ({ used_in_bytes: used, max_in_bytes: max, peak_used_in_bytes: Math.max(used, max / 2), peak_max_in_bytes: max });
  return {
    timestamp: now,
    uptime_in_millis: 86_400_000,
    mem: {
      heap_used_in_bytes: n.heapUsedBytes,
      heap_used_percent: Math.round((100 * n.heapUsedBytes) / n.heapMaxBytes),
      heap_committed_in_bytes: n.heapMaxBytes,
      heap_max_in_bytes: n.heapMaxBytes,
      non_heap_used_in_bytes: n.nonHeapUsedBytes,
      non_heap_committed_in_bytes: n.nonHeapUsedBytes + 10_000_000,
      // G1 reports no maximum for the young and survivor pools: 0.
      pools: { young: pool(young, 0), survivor: pool(survivor, 0), old: pool(old, n.heapMaxBytes) },
    },
    threads: { count: 90, peak_count: 95 },
    gc: {
      collectors: {
        young: { collection_count: 100 + n.gcOldCount * 10, collection_time_in_millis: 2_000 },
        old: { collection_count: n.gcOldCount, collection_time_in_millis: n.gcOldMillis },
      },
    },
    buffer_pools: {
      mapped: { count: 40, used_in_bytes: 1_000_000, total_capacity_in_bytes: 1_000_000 },
      direct: { count: 30, used_in_bytes: 8_000_000, total_capacity_in_bytes: 8_000_000 },
      "mapped - 'non-volatile memory'": { count: 0, used_in_bytes: 0, total_capacity_in_bytes: 0 },
    },
    classes: { current_loaded_count: 30_000, total_loaded_count: 30_100, total_unloaded_count: 100 },
  };
}

function threadPools(n: MockNode): unknown {
  return Object.fromEntries(
    THREAD_POOLS.map((p) => [
      p,
      {
        threads: p === 'write' || p === 'search' ? 8 : 1,
        queue: 0,
        active: 0,
        rejected: p === 'write' ? n.writeRejected : 0,
        largest: p === 'write' || p === 'search' ? 8 : 1,
        completed: p === 'write' ? n.indexTotal : 100,
      },
    ]),
  );
}

function breakers(n: MockNode): unknown {
  const limits: Record<(typeof BREAKERS)[number], [number, number]> = {
    eql_sequence: [0.5, 1],
    fielddata: [0.4, 1.03],
    inflight_requests: [1, 2],
    model_inference: [0.5, 1],
    parent: [0.95, 1],
    request: [0.6, 1],
  };
  return Object.fromEntries(
    BREAKERS.map((b) => {
      const [share, overhead] = limits[b];
      const estimated = b === 'parent' ? n.heapUsedBytes : 0;
      return [
        b,
        {
          limit_size_in_bytes: Math.floor(n.heapMaxBytes * share),
          estimated_size_in_bytes: estimated,
          overhead,
          tripped: b === 'parent' ? n.parentTripped : 0,
        },
      ];
    }),
  );
}

function fs(n: MockNode, now: number): unknown {
  const f = n.fs;
  const sizes = { total_in_bytes: f.totalBytes, free_in_bytes: f.freeBytes, available_in_bytes: f.availableBytes };
  return {
    timestamp: now,
    total: sizes,
    data: [{ path: f.path, mount: f.mount, type: 'ext4', ...sizes, low_watermark_free_space_in_bytes: Math.floor(f.totalBytes * 0.15) }],
    io_stats: {
      devices: [{ device_name: 'nvme0n1p1', operations: 1_000, read_operations: 400, write_operations: 600, read_kilobytes: 4_000, write_kilobytes: 6_000, io_time_in_millis: 500 }],
      total: { operations: 1_000, read_operations: 400, write_operations: 600, read_kilobytes: 4_000, write_kilobytes: 6_000, io_time_in_millis: 500 },
    },
  };
}

function os(n: MockNode, now: number): unknown {
  const total = 16 * GB;
  const used = 12 * GB;
  return {
    timestamp: now,
    cpu: { percent: n.osCpuPercent, load_average: { '1m': 1.25, '5m': 0.75, '15m': 0.5 } },
    mem: { total_in_bytes: total, adjusted_total_in_bytes: total, free_in_bytes: total - used, used_in_bytes: used, free_percent: 25, used_percent: 75 },
    swap: { total_in_bytes: 0, free_in_bytes: 0, used_in_bytes: 0 },
  };
}

function node(n: MockNode, sections: readonly Section[], now: number): Record<string, unknown> {
  const out: Record<string, unknown> = {
    timestamp: now,
    name: n.name,
    transport_address: `${n.host}:9300`,
    host: n.host,
    ip: `${n.host}:9300`,
    roles: n.roles,
    attributes: { 'xpack.installed': 'true' },
  };
  for (const s of sections) {
    if (s === 'indices') out['indices'] = indices(n);
    if (s === 'os') out['os'] = os(n, now);
    if (s === 'process') {
      out['process'] = {
        timestamp: now,
        open_file_descriptors: n.openFileDescriptors,
        max_file_descriptors: 65_535,
        cpu: { percent: n.processCpuPercent, total_in_millis: n.processCpuMillis },
        mem: { total_virtual_in_bytes: 12 * GB },
      };
    }
    if (s === 'jvm') out['jvm'] = jvm(n, now);
    if (s === 'thread_pool') out['thread_pool'] = threadPools(n);
    if (s === 'fs') out['fs'] = fs(n, now);
    if (s === 'transport') out['transport'] = { server_open: 12, total_outbound_connections: 6, rx_count: 50_000, rx_size_in_bytes: 60_000_000, tx_count: 49_000, tx_size_in_bytes: 70_000_000 };
    if (s === 'http') out['http'] = { current_open: 4, total_opened: 300, clients: [], routes: {} };
    if (s === 'breaker') out['breakers'] = breakers(n);
  }
  return out;
}

/** Thrown for a bad request; the stand-in turns it into Elasticsearch's error body. */
export class NodeStatsRequestError extends Error {}

/** The response to GET /_nodes[/{nodeIds}]/stats[/{metric}]. */
export function nodesStats(clusterName: string, all: readonly MockNode[], nodeIds: string | undefined, metric: string | undefined): unknown {
  const asked = metric === undefined || metric === '_all' ? [...NODE_STATS_METRICS] : metric.split(',');
  for (const m of asked) {
    if (!(NODE_STATS_METRICS as readonly string[]).includes(m)) {
      throw new NodeStatsRequestError(`request [/_nodes/stats/${metric}] contains unrecognized metric: [${m}]`);
    }
  }
  const sections = asked as Section[];
  const wanted = nodeIds === undefined || nodeIds === '_all' ? all : all.filter((n) => nodeIds.split(',').some((id) => id === n.id || id === n.name));
  const now = Date.now();
  const answering = wanted.filter((n) => !n.unreachable);
  const failed = wanted.filter((n) => n.unreachable);
  return {
    _nodes: {
      total: wanted.length,
      successful: answering.length,
      failed: failed.length,
      ...(failed.length > 0
        ? { failures: failed.map((n) => ({ type: 'failed_node_exception', reason: `Failed node [${n.id}]`, node_id: n.id, caused_by: { type: 'receive_timeout_transport_exception', reason: `[${n.name}][${n.host}:9300][cluster:monitor/nodes/stats[n]] request_id [1] timed out after [15000ms]` } })) }
        : {}),
    },
    cluster_name: clusterName,
    nodes: Object.fromEntries(answering.map((n) => [n.id, node(n, sections, now)])),
  };
}
