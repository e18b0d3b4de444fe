import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startElasticsearchMock, type ElasticsearchMock, type MockSnapshot } from './harness/elasticsearch.ts';
import { find, startService, value, type Service } from './helpers/service.ts';
import { SNAPSHOT_WINDOW } from '../src/collectors/elasticsearch.ts';
import { freePort } from './harness/ports.ts';
import { BREAKERS, defaultNodes, THREAD_POOLS } from './harness/elasticsearch-nodes.ts';

// The Elasticsearch collector, through the official client, against the harness's stand-in
// (no Elasticsearch can run here; test/harness/elasticsearch.ts answers with the documented shapes).

const DAY = 86_400_000;
const HOUR = 3_600_000;
const now = Date.now();
const T = { target: 'logs' };

/** A scrape with Prometheus's timeout header, bounded on the test's side. */
async function scrape(svc: Service, timeoutSeconds?: number): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = timeoutSeconds === undefined ? {} : { 'X-Prometheus-Scrape-Timeout-Seconds': String(timeoutSeconds) };
  const r = await fetch(`${svc.url}/metrics`, { headers, signal: AbortSignal.timeout(15_000) });
  return { status: r.status, body: await r.text() };
}

const old: MockSnapshot[] = Array.from({ length: 30 }, (_, i) => ({
  name: `old-${i}`,
  state: 'SUCCESS',
  startMs: now - (10 + i) * DAY,
  endMs: now - (10 + i) * DAY + HOUR,
}));
const snapOk: MockSnapshot = { name: 'nightly-ok', state: 'SUCCESS', startMs: now - 2 * DAY + 1234, endMs: now - 2 * DAY + HOUR, version: '9.1.3' };
const snapFailed: MockSnapshot = {
  name: 'nightly-failed',
  state: 'FAILED',
  startMs: now - DAY + 5678,
  endMs: now - DAY + 600_000 + 9,
  version: '9.1.3',
  shards: { total: 12, failed: 12, successful: 0 },
};

let es: ElasticsearchMock;
let svc: Service;

before(async () => {
  es = await startElasticsearchMock({
    indices: [
      { name: 'logs-2025.01', createdMs: now - 60 * DAY, storeBytes: 7777, status: 'close' },
      { name: 'logs-a', createdMs: now - 40 * DAY, storeBytes: 2000 },
      { name: 'logs-b', createdMs: now - 31 * DAY, storeBytes: 3000 },
      { name: 'logs-c', createdMs: now - 5 * DAY, storeBytes: 4000 },
      { name: 'logs-hidden', createdMs: now - 2 * DAY, storeBytes: 100, hidden: true },
      { name: 'other-x', createdMs: now - 100 * DAY, storeBytes: 1_000_000 },
    ],
    repositories: { nightly: [...old, snapOk, snapFailed] },
  });
  svc = await startService(`
elasticsearch:
  - name: logs
    url: ${es.url}
    index_patterns: ['logs-*', 'metrics-*', 'audit']
    snapshot_repository: nightly
`);
});

after(async () => {
  await svc?.close();
  await es?.close();
});

test('cluster health with elasticsearch_exporter\'s names: green, yellow, red', async () => {
  for (const [color, unassigned] of [['green', 0], ['yellow', 4], ['red', 9]] as const) {
    es.state.health = color;
    es.state.unassignedShards = unassigned;
    const { status, body } = await scrape(svc);
    assert.equal(status, 200);
    assert.equal(value(body, 'elasticsearch_cluster_health_up', T), 1);
    for (const c of ['green', 'yellow', 'red']) {
      assert.equal(value(body, 'elasticsearch_cluster_health_status', { ...T, cluster: 'logs-cluster', color: c }), c === color ? 1 : 0, `${c} when ${color}`);
    }
    assert.equal(value(body, 'elasticsearch_cluster_health_unassigned_shards', { ...T, cluster: 'logs-cluster' }), unassigned);
  }
  es.state.health = 'green';
  es.state.unassignedShards = 0;
  es.state.numberOfNodes = 5;
  es.state.numberOfDataNodes = 4;
  es.state.relocatingShards = 2;
  es.state.initializingShards = 1;
  es.state.pendingTasks = 7;
  const { body } = await scrape(svc);
  const c = { ...T, cluster: 'logs-cluster' };
  assert.equal(value(body, 'elasticsearch_cluster_health_number_of_nodes', c), 5);
  assert.equal(value(body, 'elasticsearch_cluster_health_number_of_data_nodes', c), 4);
  assert.equal(value(body, 'elasticsearch_cluster_health_relocating_shards', c), 2);
  assert.equal(value(body, 'elasticsearch_cluster_health_initializing_shards', c), 1);
  assert.equal(value(body, 'elasticsearch_cluster_health_number_of_pending_tasks', c), 7);
  assert.equal(value(body, 'housekeeper_collector_success', { collector: 'elasticsearch', target: 'logs' }), 1);
});

test('index patterns: count, size, oldest age, and indices past the retention', async () => {
  const { body } = await scrape(svc);
  const logs = { ...T, pattern: 'logs-*' };
  // Closed and hidden indices count; other-x does not match.
  assert.equal(value(body, 'elasticsearch_index_pattern_indices', logs), 5);
  assert.equal(value(body, 'elasticsearch_index_pattern_store_size_bytes', logs), 2000 + 3000 + 4000 + 100, 'bytes, closed index 0');
  assert.equal(value(body, 'elasticsearch_index_pattern_indices_past_retention', logs), 3, '60, 40 and 31 days old against 30');
  assert.equal(value(body, 'elasticsearch_index_pattern_retention_seconds', logs), 30 * 86_400, 'the runbook\'s default');
  const age = value(body, 'elasticsearch_index_pattern_oldest_index_age_seconds', logs) ?? 0;
  // The oldest was created 60 days before the test started; the scrape happens after.
  assert.ok(age >= 60 * 86_400 && age < 61 * 86_400, `oldest age ${age}`);
  // A wildcard matching nothing, and a concrete name that does not exist (404 from Elasticsearch).
  for (const pattern of ['metrics-*', 'audit']) {
    const l = { ...T, pattern };
    assert.equal(value(body, 'elasticsearch_index_pattern_indices', l), 0, pattern);
    assert.equal(value(body, 'elasticsearch_index_pattern_store_size_bytes', l), 0, pattern);
    assert.equal(value(body, 'elasticsearch_index_pattern_indices_past_retention', l), 0, pattern);
    assert.equal(find(body, 'elasticsearch_index_pattern_oldest_index_age_seconds', l).length, 0, `${pattern}: no oldest`);
  }
  const cat = es.requests.filter((r) => r.path === '/_cat/indices/logs-*').at(-1);
  assert.deepEqual(cat?.query, { format: 'json', bytes: 'b', h: 'index,status,creation.date,store.size', expand_wildcards: 'all' });
});

test('a shorter retention counts more indices past it; deleting them clears the count', async () => {
  const shortSvc = await startService(`
elasticsearch:
  - name: logs
    url: ${es.url}
    index_patterns: ['logs-*']
    retention: 3d
`);
  try {
    let body = (await scrape(shortSvc)).body;
    assert.equal(value(body, 'elasticsearch_index_pattern_indices_past_retention', { ...T, pattern: 'logs-*' }), 4);
    assert.equal(value(body, 'elasticsearch_index_pattern_retention_seconds', { ...T, pattern: 'logs-*' }), 3 * 86_400);
    const saved = es.state.indices;
    es.state.indices = saved.filter((i) => !i.name.startsWith('logs-') || now - i.createdMs < 3 * DAY);
    try {
      body = (await scrape(shortSvc)).body;
      assert.equal(value(body, 'elasticsearch_index_pattern_indices', { ...T, pattern: 'logs-*' }), 1);
      assert.equal(value(body, 'elasticsearch_index_pattern_indices_past_retention', { ...T, pattern: 'logs-*' }), 0);
    } finally {
      es.state.indices = saved;
    }
  } finally {
    await shortSvc.close();
  }
});

test('snapshots: latest successful time, newest snapshot\'s time and state, count', async () => {
  const { body } = await scrape(svc);
  const repo = { ...T, repository: 'nightly' };
  assert.equal(value(body, 'elasticsearch_snapshot_stats_number_of_snapshots', repo), 32, 'total, beyond the window read');
  assert.equal(value(body, 'elasticsearch_snapshot_stats_latest_snapshot_timestamp_seconds', repo), snapOk.startMs / 1000);
  const newest = { ...repo, state: 'FAILED', version: '9.1.3' };
  assert.equal(value(body, 'elasticsearch_snapshot_stats_snapshot_start_time_timestamp', newest), snapFailed.startMs / 1000);
  assert.equal(value(body, 'elasticsearch_snapshot_stats_snapshot_end_time_timestamp', newest), (snapFailed.endMs ?? 0) / 1000);
  assert.equal(value(body, 'elasticsearch_snapshot_stats_snapshot_failed_shards', newest), 12);
  assert.equal(find(body, 'elasticsearch_snapshot_stats_snapshot_start_time_timestamp').length, 1, 'only the newest snapshot');
  const req = es.requests.filter((r) => r.path === '/_snapshot/nightly/_all').at(-1);
  assert.equal(req?.query['size'], String(SNAPSHOT_WINDOW), 'bounded read');

  // A snapshot in progress becomes the newest: no end time yet, the last success unchanged.
  const running: MockSnapshot = { name: 'nightly-running', state: 'IN_PROGRESS', startMs: now - 60_000 };
  es.state.repositories['nightly']?.push(running);
  try {
    const b = (await scrape(svc)).body;
    const r = { ...repo, state: 'IN_PROGRESS', version: '9.1.3' };
    assert.equal(value(b, 'elasticsearch_snapshot_stats_snapshot_start_time_timestamp', r), running.startMs / 1000);
    assert.equal(find(b, 'elasticsearch_snapshot_stats_snapshot_end_time_timestamp', r).length, 0);
    assert.equal(value(b, 'elasticsearch_snapshot_stats_latest_snapshot_timestamp_seconds', repo), snapOk.startMs / 1000);
  } finally {
    es.state.repositories['nightly']?.pop();
  }
});

test('a 503 gives elasticsearch up 0 with a 200, one request (no retries), and recovers', async () => {
  es.state.fail = { status: 503, type: 'master_not_discovered_exception', reason: null };
  try {
    const before = es.requests.length;
    const { status, body } = await scrape(svc);
    assert.equal(status, 200);
    assert.equal(value(body, 'elasticsearch_cluster_health_up', T), 0);
    assert.equal(value(body, 'housekeeper_collector_success', { collector: 'elasticsearch', target: 'logs' }), 0);
    assert.equal(find(body, 'elasticsearch_cluster_health_status').length, 0, 'a down cluster\'s metrics are absent, not stale');
    assert.equal(find(body, 'elasticsearch_index_pattern_indices').length, 0);
    assert.equal(es.requests.length - before, 1, 'one request: no retries against a failing cluster');
    assert.ok(svc.lines.some((l) => l.includes('GET /_cluster/health: HTTP 503 master_not_discovered_exception')), 'the log says what failed');
  } finally {
    es.state.fail = undefined;
  }
  const { body } = await scrape(svc);
  assert.equal(value(body, 'elasticsearch_cluster_health_up', T), 1, 'back after the 503 (the only node is not left dead)');
  assert.equal(value(body, 'elasticsearch_cluster_health_status', { ...T, cluster: 'logs-cluster', color: 'green' }), 1);
});

test('a failing index or snapshot query fails the collection too', async () => {
  es.state.fail = { status: 500, type: 'circuit_breaking_exception', reason: '[parent] Data too large', path: /^\/_snapshot\// };
  try {
    const { status, body } = await scrape(svc);
    assert.equal(status, 200);
    assert.equal(value(body, 'elasticsearch_cluster_health_up', T), 0);
    assert.ok(svc.lines.some((l) => l.includes('GET /_snapshot/nightly/_all: HTTP 500 circuit_breaking_exception')));
  } finally {
    es.state.fail = undefined;
  }
});

test('an 8.x cluster answers too: the client asks for compatible-with=8', async () => {
  const es8 = await startElasticsearchMock({ version: '8.17.4' });
  const s = await startService(`
elasticsearch:
  - name: old
    url: ${es8.url}
`);
  try {
    const { body } = await scrape(s);
    assert.equal(value(body, 'elasticsearch_cluster_health_up', { target: 'old' }), 1);
    assert.match(String(es8.requests[0]?.headers.accept), /compatible-with=8/);
  } finally {
    await s.close();
    await es8.close();
  }
});

test('a server that is not Elasticsearch (no x-elastic-product header) is down', async () => {
  const fake = await startElasticsearchMock({ productHeader: false });
  const s = await startService(`
elasticsearch:
  - name: fake
    url: ${fake.url}
`);
  try {
    const { status, body } = await scrape(s);
    assert.equal(status, 200);
    assert.equal(value(body, 'elasticsearch_cluster_health_up', { target: 'fake' }), 0);
    assert.ok(s.lines.some((l) => l.includes('ProductNotSupportedError')));
  } finally {
    await s.close();
    await fake.close();
  }
});

test('nothing listening: up 0 with a 200, and the log names the refused connection', async () => {
  const port = await freePort();
  const s = await startService(`
elasticsearch:
  - name: gone
    url: http://127.0.0.1:${port}
`);
  try {
    const { status, body } = await scrape(s);
    assert.equal(status, 200);
    assert.equal(value(body, 'elasticsearch_cluster_health_up', { target: 'gone' }), 0);
    assert.ok(s.lines.some((l) => l.includes('ConnectionError') && l.includes('ECONNREFUSED')));
  } finally {
    await s.close();
  }
});

test('a hung server: every scrape answers 200 within its deadline, connections stay bounded', async () => {
  const hung = await startElasticsearchMock({ hang: true });
  const s = await startService(`
elasticsearch:
  - name: hung
    url: ${hung.url}
    index_patterns: ['logs-*']
`);
  try {
    for (let i = 0; i < 5; i++) {
      // Deadline 1 s less the 500 ms offset; the test's own fetch gives up after 15 s.
      const { status, body } = await scrape(s, 1);
      assert.equal(status, 200);
      assert.equal(value(body, 'elasticsearch_cluster_health_up', { target: 'hung' }), 0);
      assert.equal(value(body, 'housekeeper_collector_success', { collector: 'elasticsearch', target: 'hung' }), 0);
    }
    assert.equal(hung.requests.length, 5, 'one request per scrape: aborted at the deadline, never retried');
    assert.ok(hung.openConnections() <= 2, `open connections: ${hung.openConnections()}`);
  } finally {
    await s.close();
    await hung.close();
  }
});

test('a password in the URL authenticates, and never reaches /metrics or the log', async () => {
  const password = 'Sup3r:secret/pa%ss';
  const secured = await startElasticsearchMock({ auth: { username: 'elastic', password } });
  const s = await startService(`
elasticsearch:
  - name: secured
    url: ${secured.urlWith('elastic', password)}
    index_patterns: ['logs-*']
`);
  const basic = Buffer.from(`elastic:${password}`).toString('base64');
  try {
    let { body } = await scrape(s);
    assert.equal(value(body, 'elasticsearch_cluster_health_up', { target: 'secured' }), 1, 'credentials from the URL were sent');
    assert.equal(secured.requests[0]?.headers.authorization, `Basic ${basic}`);
    // A wrong password on the server's side: 401 with Elasticsearch's JSON error.
    secured.state.auth = { username: 'elastic', password: 'rotated' };
    ({ body } = await scrape(s));
    assert.equal(value(body, 'elasticsearch_cluster_health_up', { target: 'secured' }), 0);
    assert.ok(s.lines.some((l) => l.includes('HTTP 401 security_exception')), 'the 401 is logged');
    for (const text of [body, ...s.lines]) {
      assert.ok(!text.includes(password), 'password leaked');
      assert.ok(!text.includes(encodeURIComponent(password)), 'encoded password leaked');
      assert.ok(!text.includes(basic), 'basic credentials leaked');
    }
  } finally {
    await s.close();
    await secured.close();
  }
});

// elasticsearch_exporter's node-stats families, with the labels each adds to the node's own:
// what its community dashboards and awesome-prometheus-alerts' rules query.
const NODE_LABELS = ['cluster', 'host', 'name', 'es_master_node', 'es_data_node', 'es_ingest_node', 'es_client_node'];
const EXPORTER_NODE_FAMILIES: Record<string, string[]> = {
  elasticsearch_jvm_memory_used_bytes: ['area'],
  elasticsearch_jvm_memory_committed_bytes: ['area'],
  elasticsearch_jvm_memory_max_bytes: ['area'],
  elasticsearch_jvm_memory_pool_used_bytes: ['pool'],
  elasticsearch_jvm_memory_pool_max_bytes: ['pool'],
  elasticsearch_jvm_memory_pool_peak_used_bytes: ['pool'],
  elasticsearch_jvm_memory_pool_peak_max_bytes: ['pool'],
  elasticsearch_jvm_gc_collection_seconds_count: ['gc'],
  elasticsearch_jvm_gc_collection_seconds_sum: ['gc'],
  elasticsearch_filesystem_data_size_bytes: ['mount', 'path'],
  elasticsearch_filesystem_data_free_bytes: ['mount', 'path'],
  elasticsearch_filesystem_data_available_bytes: ['mount', 'path'],
  elasticsearch_indices_docs: [],
  elasticsearch_indices_docs_deleted: [],
  elasticsearch_indices_store_size_bytes: [],
  elasticsearch_indices_indexing_index_total: [],
  elasticsearch_indices_indexing_index_time_seconds_total: [],
  elasticsearch_indices_indexing_delete_total: [],
  elasticsearch_indices_indexing_delete_time_seconds_total: [],
  elasticsearch_indices_search_query_total: [],
  elasticsearch_indices_search_query_time_seconds: [],
  elasticsearch_indices_search_fetch_total: [],
  elasticsearch_indices_search_fetch_time_seconds: [],
  elasticsearch_indices_get_total: [],
  elasticsearch_indices_get_time_seconds: [],
  elasticsearch_indices_merges_total: [],
  elasticsearch_indices_merges_docs_total: [],
  elasticsearch_indices_merges_total_size_bytes_total: [],
  elasticsearch_indices_merges_total_time_seconds_total: [],
  elasticsearch_indices_refresh_total: [],
  elasticsearch_indices_refresh_time_seconds_total: [],
  elasticsearch_indices_flush_total: [],
  elasticsearch_indices_flush_time_seconds: [],
  elasticsearch_indices_segments_count: [],
  elasticsearch_indices_segments_memory_bytes: [],
  elasticsearch_indices_fielddata_memory_size_bytes: [],
  elasticsearch_indices_fielddata_evictions: [],
  elasticsearch_indices_query_cache_memory_size_bytes: [],
  elasticsearch_indices_query_cache_evictions: [],
  elasticsearch_indices_query_cache_count: ['cache'],
  elasticsearch_indices_request_cache_memory_size_bytes: [],
  elasticsearch_indices_request_cache_count: ['cache'],
  elasticsearch_indices_translog_operations: [],
  elasticsearch_indices_translog_size_in_bytes: [],
  elasticsearch_thread_pool_active_count: ['type'],
  elasticsearch_thread_pool_queue_count: ['type'],
  elasticsearch_thread_pool_rejected_count: ['type'],
  elasticsearch_thread_pool_completed_count: ['type'],
  elasticsearch_thread_pool_threads_count: ['type'],
  elasticsearch_thread_pool_largest_count: ['type'],
  elasticsearch_breakers_estimated_size_bytes: ['breaker'],
  elasticsearch_breakers_limit_size_bytes: ['breaker'],
  elasticsearch_breakers_tripped: ['breaker'],
  elasticsearch_os_cpu_percent: [],
  elasticsearch_os_load1: [],
  elasticsearch_os_load5: [],
  elasticsearch_os_load15: [],
  elasticsearch_os_mem_free_bytes: [],
  elasticsearch_os_mem_used_bytes: [],
  elasticsearch_process_cpu_percent: [],
  elasticsearch_process_cpu_seconds_total: [],
  elasticsearch_process_open_files_count: [],
  elasticsearch_process_max_files_descriptors: [],
  elasticsearch_transport_rx_packets_total: [],
  elasticsearch_transport_rx_size_bytes_total: [],
  elasticsearch_transport_tx_packets_total: [],
  elasticsearch_transport_tx_size_bytes_total: [],
};
const DATA_NODE = { ...T, cluster: 'logs-cluster', name: 'es-data-0' };
const COORD_NODE = { ...T, cluster: 'logs-cluster', name: 'es-coord-0' };

test('node stats: every exporter family, on both nodes, with the exporter\'s labels and role values', async () => {
  es.state.nodes = defaultNodes();
  const { status, body } = await scrape(svc);
  assert.equal(status, 200);
  assert.equal(value(body, 'elasticsearch_node_stats_up', T), 1);
  for (const [family, extra] of Object.entries(EXPORTER_NODE_FAMILIES)) {
    for (const node of [DATA_NODE, COORD_NODE]) {
      const samples = find(body, family, node);
      assert.ok(samples.length > 0, `${family} for ${node.name}`);
      for (const s of samples) assert.deepEqual(Object.keys(s.labels).sort(), ['target', ...NODE_LABELS, ...extra].sort(), `${family} labels`);
    }
  }
  // Roles: a master-eligible data (tiers included) and ingest node, and a coordinating-only one.
  const heap = (n: typeof DATA_NODE) => find(body, 'elasticsearch_jvm_memory_used_bytes', { ...n, area: 'heap' })[0]?.labels;
  assert.deepEqual(
    [heap(DATA_NODE)?.['es_master_node'], heap(DATA_NODE)?.['es_data_node'], heap(DATA_NODE)?.['es_ingest_node'], heap(DATA_NODE)?.['es_client_node'], heap(DATA_NODE)?.['host']],
    ['true', 'true', 'true', 'true', '10.0.0.11'],
  );
  assert.deepEqual(
    [heap(COORD_NODE)?.['es_master_node'], heap(COORD_NODE)?.['es_data_node'], heap(COORD_NODE)?.['es_ingest_node'], heap(COORD_NODE)?.['es_client_node']],
    ['false', 'false', 'false', 'true'],
  );
  // Thread pools and breakers: the node's fixed sets, all of them, each once per node.
  assert.deepEqual(find(body, 'elasticsearch_thread_pool_rejected_count', DATA_NODE).map((s) => s.labels['type']).sort(), [...THREAD_POOLS].sort());
  assert.deepEqual(find(body, 'elasticsearch_breakers_tripped', COORD_NODE).map((s) => s.labels['breaker']).sort(), [...BREAKERS].sort());
  assert.deepEqual(find(body, 'elasticsearch_jvm_gc_collection_seconds_count', DATA_NODE).map((s) => s.labels['gc']).sort(), ['old', 'young']);
  assert.match(body, /# HELP elasticsearch_thread_pool_rejected_count .*fixed set/);
  assert.match(body, /# TYPE elasticsearch_thread_pool_rejected_count counter/);
  // One request, for the sections read and not the heavy ones (http lists every client).
  const asked = es.requests.filter((r) => r.path.startsWith('/_nodes/')).at(-1);
  assert.equal(decodeURIComponent(asked?.path ?? ''), '/_nodes/stats/indices,os,process,jvm,thread_pool,fs,transport,breaker');
});

test('node stats: values in base units (ms to seconds, bytes, percent), and they move with the cluster', async () => {
  const nodes = defaultNodes();
  const data = nodes[0];
  assert.ok(data);
  Object.assign(data, {
    heapUsedBytes: 3_000_000_000,
    heapMaxBytes: 4_000_000_000,
    gcOldCount: 7,
    gcOldMillis: 1_234,
    indexTotal: 500,
    indexTimeMillis: 2_500,
    queryTimeMillis: 750,
    writeRejected: 3,
    parentTripped: 1,
    osCpuPercent: 87,
    processCpuPercent: 64,
    processCpuMillis: 7_200_500,
    openFileDescriptors: 1_001,
    fs: { ...data.fs, totalBytes: 1_000_000, freeBytes: 300_000, availableBytes: 250_000 },
  });
  es.state.nodes = nodes;
  try {
    let { body } = await scrape(svc);
    const heap = { ...DATA_NODE, area: 'heap' };
    assert.equal(value(body, 'elasticsearch_jvm_memory_used_bytes', heap), 3_000_000_000);
    assert.equal(value(body, 'elasticsearch_jvm_memory_max_bytes', heap), 4_000_000_000);
    assert.equal(value(body, 'elasticsearch_jvm_gc_collection_seconds_count', { ...DATA_NODE, gc: 'old' }), 7);
    assert.equal(value(body, 'elasticsearch_jvm_gc_collection_seconds_sum', { ...DATA_NODE, gc: 'old' }), 1.234, 'ms to seconds');
    assert.equal(value(body, 'elasticsearch_indices_indexing_index_time_seconds_total', DATA_NODE), 2.5);
    assert.equal(value(body, 'elasticsearch_indices_search_query_time_seconds', DATA_NODE), 0.75);
    assert.equal(value(body, 'elasticsearch_process_cpu_seconds_total', DATA_NODE), 7_200.5);
    assert.equal(value(body, 'elasticsearch_os_cpu_percent', DATA_NODE), 87, 'percent stays 0-100');
    assert.equal(value(body, 'elasticsearch_process_cpu_percent', DATA_NODE), 64);
    assert.equal(value(body, 'elasticsearch_process_open_files_count', DATA_NODE), 1_001);
    assert.equal(value(body, 'elasticsearch_os_load1', DATA_NODE), 1.25);
    const fs = { ...DATA_NODE, path: '/usr/share/elasticsearch/data', mount: '/ (/dev/nvme0n1p1)' };
    assert.equal(value(body, 'elasticsearch_filesystem_data_size_bytes', fs), 1_000_000);
    assert.equal(value(body, 'elasticsearch_filesystem_data_free_bytes', fs), 300_000);
    assert.equal(value(body, 'elasticsearch_filesystem_data_available_bytes', fs), 250_000);
    assert.equal(value(body, 'elasticsearch_thread_pool_rejected_count', { ...DATA_NODE, type: 'write' }), 3);
    assert.equal(value(body, 'elasticsearch_breakers_tripped', { ...DATA_NODE, breaker: 'parent' }), 1);
    assert.equal(value(body, 'elasticsearch_breakers_limit_size_bytes', { ...DATA_NODE, breaker: 'parent' }), 3_800_000_000, '95% of the heap');
    // The other node keeps its own values.
    assert.equal(value(body, 'elasticsearch_jvm_memory_used_bytes', { ...COORD_NODE, area: 'heap' }), 0.5 * 1024 ** 3);

    // The cluster works on: counters grow, gauges follow.
    Object.assign(data, { heapUsedBytes: 1_000_000_000, gcOldCount: 8, gcOldMillis: 2_000, writeRejected: 10, indexTotal: 900, osCpuPercent: 15 });
    ({ body } = await scrape(svc));
    assert.equal(value(body, 'elasticsearch_jvm_memory_used_bytes', heap), 1_000_000_000);
    assert.equal(value(body, 'elasticsearch_jvm_gc_collection_seconds_sum', { ...DATA_NODE, gc: 'old' }), 2);
    assert.equal(value(body, 'elasticsearch_thread_pool_rejected_count', { ...DATA_NODE, type: 'write' }), 10);
    assert.equal(value(body, 'elasticsearch_indices_indexing_index_total', DATA_NODE), 900);
    assert.equal(value(body, 'elasticsearch_os_cpu_percent', DATA_NODE), 15);
  } finally {
    es.state.nodes = defaultNodes();
  }
});

test('node stats: a node that does not answer loses its series, the others stay', async () => {
  const nodes = defaultNodes();
  const coord = nodes[1];
  assert.ok(coord);
  coord.unreachable = true;
  es.state.nodes = nodes;
  try {
    const { body } = await scrape(svc);
    assert.equal(value(body, 'elasticsearch_node_stats_up', T), 1, 'a partial answer is an answer');
    assert.ok(find(body, 'elasticsearch_jvm_memory_used_bytes', DATA_NODE).length > 0);
    assert.equal(find(body, 'elasticsearch_jvm_memory_used_bytes', COORD_NODE).length, 0);
  } finally {
    es.state.nodes = defaultNodes();
  }
});

test('node stats refused (403): node_stats_up 0, cluster health and index metrics still served', async () => {
  es.state.fail = {
    status: 403,
    type: 'security_exception',
    reason: 'action [cluster:monitor/nodes/stats] is unauthorized for user [housekeeper] with effective roles [logs_reader]',
    path: /^\/_nodes\//,
  };
  try {
    const { status, body } = await scrape(svc);
    assert.equal(status, 200);
    assert.equal(value(body, 'elasticsearch_node_stats_up', T), 0);
    assert.equal(value(body, 'elasticsearch_cluster_health_up', T), 1);
    assert.equal(value(body, 'housekeeper_collector_success', { collector: 'elasticsearch', target: 'logs' }), 1);
    assert.equal(value(body, 'elasticsearch_cluster_health_status', { ...T, cluster: 'logs-cluster', color: 'green' }), 1);
    assert.equal(value(body, 'elasticsearch_index_pattern_indices', { ...T, pattern: 'logs-*' }), 5);
    assert.equal(find(body, 'elasticsearch_jvm_memory_used_bytes').length, 0, 'no stale node series');
    assert.ok(svc.lines.some((l) => l.includes('node stats failed') && l.includes('HTTP 403 security_exception')), 'the log says what failed');
  } finally {
    es.state.fail = undefined;
  }
  const { body } = await scrape(svc);
  assert.equal(value(body, 'elasticsearch_node_stats_up', T), 1);
  assert.ok(find(body, 'elasticsearch_jvm_memory_used_bytes', DATA_NODE).length > 0, 'back after the 403');
  assert.ok(svc.lines.some((l) => l.includes('node stats recovered')));
});
