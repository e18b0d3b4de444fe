// An Elasticsearch stand-in for tests: no Elasticsearch can run on these machines, so this
// HTTP server on loopback answers the endpoints housekeeper uses with Elasticsearch's
// documented response shapes, from state the test sets.
//
// What it reproduces, and where it is documented:
// - Every response carries `x-elastic-product: Elasticsearch` (since 7.14); the official
//   client refuses a 2xx without it (ProductNotSupportedError). `productHeader: false` drops it.
// - REST API compatibility: `Accept` / `Content-Type: application/vnd.elasticsearch+json;
//   compatible-with=N`. A server of major M accepts N = M or M-1 and answers 400
//   media_type_header_exception otherwise; the answer's content type echoes the version asked.
//   https://www.elastic.co/docs/reference/elasticsearch/rest-apis/compatibility
// - Unknown query parameters: 400 illegal_argument_exception "request [path] contains
//   unrecognized parameter: [x]", as Elasticsearch's REST layer does.
// - Errors: `{ "error": { "root_cause": [...], "type", "reason" }, "status" }`; 401 with
//   `WWW-Authenticate` when basic auth is required and missing or wrong.
//   https://www.elastic.co/docs/reference/elasticsearch/rest-apis/common-options
// - GET /                         cluster info
// - GET /_cluster/health          https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-cluster-health
// - GET /_cat/indices[/{target}]  https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-cat-indices
//   (format=json; values are strings; bytes=b gives plain byte counts, otherwise "1.2kb"-style)
// - GET /_snapshot/{repo}/{snapshot}  https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-snapshot-get
//   (sort=start_time|name, order, size, offset; `total` and `remaining`; 404 repository_missing_exception)
// - GET /_nodes[/{node_id}]/stats[/{metric}]  https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-nodes-stats
//   (Elasticsearch 8's shape, per node from `nodes`: see elasticsearch-nodes.ts)
// - `hang: true` accepts connections and reads requests but never answers.
//
// For the Elasticsearch actions (es-delete-old-indices, es-forcemerge, es-snapshot):
// - Index expressions: a wildcard also matches alias and data-stream names, which expand to
//   their indices (hidden backing indices included), as Elasticsearch resolves them.
//   https://www.elastic.co/docs/reference/elasticsearch/rest-apis/api-conventions#api-multi-index
// - GET /_data_stream[/{name}]    https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-get-data-stream
//   ({ data_streams: [{ name, indices: [{ index_name, index_uuid }], generation, ... }] }; the last
//   index is the write index)
// - GET /_cat/aliases[/{name}]    https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-cat-aliases
//   (format=json; is_write_index "true" | "false" | "-" when not set)
// - GET /{target}/_settings[/{name}]  https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-get-settings
//   (flat_settings=true gives "index.blocks.write" keys; otherwise nested objects)
// - GET /{target}/_stats[/{metric}]   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-stats
//   (indices.{name}.primaries.segments.count and total; closed indices are left out)
// - DELETE /{index}               https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-delete
//   ({ acknowledged: true }; wildcards and _all are refused, as with action.destructive_requires_name,
//   the default since 8.0; a data stream's write index cannot be deleted; 404 index_not_found_exception)
// - POST /{index}/_forcemerge     https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-forcemerge
//   (max_num_segments; wait_for_completion=false answers { task: "node:id" }; a closed index is
//   400 index_closed_exception)
// - GET /_tasks/{task_id}         https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-tasks-get
//   ({ completed, task, response }; `forcemergePolls` answers that many polls with completed: false
//   first; 404 resource_not_found_exception for an unknown task)
// - PUT|POST /_snapshot/{repo}/{snapshot}  https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-snapshot-create
//   (body { indices, ignore_unavailable, include_global_state, metadata }; wait_for_completion=true
//   answers { snapshot: {...} }, otherwise { accepted: true } and the snapshot is IN_PROGRESS for
//   `snapshotPolls` GETs, then ends in `snapshotOutcome`; a name in use is 400
//   invalid_snapshot_name_exception)
// Every request is recorded with its method, path, query and parsed JSON body, so tests can
// assert exactly which indices were named.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { defaultNodes, nodesStats, NodeStatsRequestError, type MockNode } from './elasticsearch-nodes.ts';

export type { MockNode } from './elasticsearch-nodes.ts';

export type Color = 'green' | 'yellow' | 'red';

export interface MockIndex {
  name: string;
  /** Creation time, ms since epoch (the index setting index.creation_date). */
  createdMs: number;
  /** Store size of all copies, bytes. */
  storeBytes: number;
  priStoreBytes?: number;
  status?: 'open' | 'close';
  health?: Color;
  hidden?: boolean;
  docs?: number;
  /** Primary shards (default 1). */
  shards?: number;
  /** Segments over all primary shards (default: one per shard, i.e. merged). */
  segments?: number;
  /** Index settings in flat form, e.g. { 'index.blocks.write': 'true' }. */
  settings?: Record<string, string>;
}

export interface MockAlias {
  alias: string;
  index: string;
  /** Unset prints "-" in _cat/aliases. */
  isWriteIndex?: boolean;
}

export interface MockDataStream {
  name: string;
  /** Backing index names, oldest first; the last is the write index. Each must be in `indices` too. */
  indices: string[];
}

export interface MockTask {
  node: string;
  id: number;
  index: string[];
  startMs: number;
  /** Polls still answered with completed: false. */
  pollsLeft: number;
  completed: boolean;
}

export interface MockSnapshot {
  name: string;
  state: 'SUCCESS' | 'PARTIAL' | 'FAILED' | 'IN_PROGRESS' | 'INCOMPATIBLE';
  startMs: number;
  /** Absent while IN_PROGRESS (Elasticsearch then reports end_time_in_millis 0). */
  endMs?: number;
  version?: string;
  shards?: { total: number; failed: number; successful: number };
  indices?: string[];
  /** While IN_PROGRESS: GETs still answered IN_PROGRESS before it ends in `finalState`. */
  pendingPolls?: number;
  finalState?: 'SUCCESS' | 'PARTIAL' | 'FAILED';
  /** The create request's body, as received. */
  request?: unknown;
}

export interface MockFailure {
  status: number;
  type: string;
  reason: string | null;
  /** Only requests whose path matches; all requests when absent. */
  path?: RegExp;
  /** Only requests with this method (e.g. 'PUT'); any method when absent. */
  method?: string;
}

export interface MockState {
  clusterName: string;
  /** Full version of the pretend server; its major decides which compatible-with it accepts. */
  version: string;
  health: Color;
  numberOfNodes: number;
  numberOfDataNodes: number;
  activePrimaryShards: number;
  activeShards: number;
  relocatingShards: number;
  initializingShards: number;
  unassignedShards: number;
  delayedUnassignedShards: number;
  pendingTasks: number;
  /** The nodes _nodes/stats reports (two by default: a data node and a coordinating-only one). */
  nodes: MockNode[];
  indices: MockIndex[];
  /** Snapshot repositories by name. */
  repositories: Record<string, MockSnapshot[]>;
  /** When set, every request needs this basic auth. */
  auth: { username: string; password: string } | undefined;
  fail: MockFailure | undefined;
  hang: boolean;
  productHeader: boolean;
  aliases: MockAlias[];
  dataStreams: MockDataStream[];
  /** Force-merge tasks by "node:id". */
  tasks: Record<string, MockTask>;
  /** Task polls answered with completed: false before a force merge completes. */
  forcemergePolls: number;
  /** GETs answered IN_PROGRESS before a snapshot taken with wait_for_completion=false ends. */
  snapshotPolls: number;
  /** How a new snapshot ends. */
  snapshotOutcome: 'SUCCESS' | 'PARTIAL' | 'FAILED';
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  /** The parsed JSON body; undefined when there was none. */
  body?: unknown;
}

export interface ElasticsearchMock {
  /** http://127.0.0.1:PORT (no credentials). */
  readonly url: string;
  readonly port: number;
  /** The URL with credentials in it, as a config would hold them. */
  urlWith(username: string, password: string): string;
  /** Mutable: tests change the cluster between scrapes. */
  state: MockState;
  /** Every request received, in order (hung ones too). */
  readonly requests: RecordedRequest[];
  /** Connections accepted and not yet closed. */
  openConnections(): number;
  /** Connections accepted since start. */
  acceptedConnections(): number;
  close(): Promise<void>;
}

function defaultState(): MockState {
  return {
    clusterName: 'logs-cluster',
    version: '9.1.3',
    health: 'green',
    numberOfNodes: 3,
    numberOfDataNodes: 3,
    activePrimaryShards: 10,
    activeShards: 20,
    relocatingShards: 0,
    initializingShards: 0,
    unassignedShards: 0,
    delayedUnassignedShards: 0,
    pendingTasks: 0,
    nodes: defaultNodes(),
    indices: [],
    repositories: {},
    auth: undefined,
    fail: undefined,
    hang: false,
    productHeader: true,
    aliases: [],
    dataStreams: [],
    tasks: {},
    forcemergePolls: 0,
    snapshotPolls: 0,
    snapshotOutcome: 'SUCCESS',
  };
}

const COMMON_PARAMS = ['error_trace', 'filter_path', 'human', 'pretty'];
const HEALTH_PARAMS = [
  'expand_wildcards',
  'level',
  'local',
  'master_timeout',
  'timeout',
  'wait_for_active_shards',
  'wait_for_events',
  'wait_for_nodes',
  'wait_for_no_initializing_shards',
  'wait_for_no_relocating_shards',
  'wait_for_status',
];
const CAT_PARAMS = ['format', 'h', 'help', 's', 'v', 'bytes', 'time', 'expand_wildcards', 'health', 'include_unloaded_segments', 'pri', 'master_timeout'];
const SNAPSHOT_PARAMS = [
  'after',
  'from_sort_value',
  'ignore_unavailable',
  'index_details',
  'index_names',
  'include_repository',
  'master_timeout',
  'order',
  'offset',
  'size',
  'slm_policy_filter',
  'sort',
  'verbose',
];

const CAT_ALIASES_PARAMS = ['format', 'h', 'help', 's', 'v', 'expand_wildcards', 'local', 'master_timeout'];
const DATA_STREAM_PARAMS = ['expand_wildcards', 'include_defaults', 'master_timeout', 'verbose'];
const SETTINGS_PARAMS = ['allow_no_indices', 'expand_wildcards', 'flat_settings', 'ignore_unavailable', 'include_defaults', 'local', 'master_timeout'];
const STATS_PARAMS = [
  'completion_fields',
  'expand_wildcards',
  'fielddata_fields',
  'fields',
  'forbid_closed_indices',
  'groups',
  'include_segment_file_sizes',
  'include_unloaded_segments',
  'level',
];
const DELETE_INDEX_PARAMS = ['allow_no_indices', 'expand_wildcards', 'ignore_unavailable', 'master_timeout', 'timeout'];
const FORCEMERGE_PARAMS = ['allow_no_indices', 'expand_wildcards', 'flush', 'ignore_unavailable', 'max_num_segments', 'only_expunge_deletes', 'wait_for_completion'];
const TASK_PARAMS = ['timeout', 'wait_for_completion'];
const NODES_STATS_PARAMS = ['completion_fields', 'fielddata_fields', 'fields', 'groups', 'include_segment_file_sizes', 'include_unloaded_segments', 'level', 'timeout', 'types'];
const SNAPSHOT_CREATE_PARAMS = ['master_timeout', 'wait_for_completion'];

class HttpError extends Error {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;
  constructor(status: number, body: unknown, headers: Record<string, string> = {}) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

/** Elasticsearch's error body. */
function esError(status: number, type: string, reason: string | null, extra: Record<string, unknown> = {}): HttpError {
  const cause = { type, reason, ...extra };
  return new HttpError(status, { error: { root_cause: [cause], type, reason, ...extra }, status });
}

function humanBytes(n: number): string {
  const units = ['b', 'kb', 'mb', 'gb', 'tb', 'pb'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v}b` : `${v.toFixed(1)}${units[i]}`;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** Resolves a cat-indices target (comma list, wildcards, -exclusions) as Elasticsearch does. */
function resolveIndices(state: MockState, target: string | undefined, expand: string[]): MockIndex[] {
  const all = state.indices;
  const exprs = target === undefined || target === '' || target === '_all' ? ['*'] : target.split(',');
  const chosen = new Map<string, MockIndex>();
  const wantsOpen = expand.includes('all') || expand.includes('open');
  const wantsClosed = expand.includes('all') || expand.includes('closed');
  const wantsHidden = expand.includes('all') || expand.includes('hidden');
  for (const expr of exprs) {
    if (expr.startsWith('-') && chosen.size > 0) {
      const re = globToRegExp(expr.slice(1));
      for (const name of [...chosen.keys()]) if (re.test(name)) chosen.delete(name);
      continue;
    }
    if (expr.includes('*')) {
      const re = globToRegExp(expr);
      for (const ix of all) {
        if (!re.test(ix.name)) continue;
        const closed = ix.status === 'close';
        if (closed ? !wantsClosed : !wantsOpen) continue;
        // A hidden index matches a wildcard only with expand_wildcards=hidden|all, or when the
        // pattern itself starts with a dot.
        if (ix.hidden && !wantsHidden && !expr.startsWith('.')) continue;
        chosen.set(ix.name, ix);
      }
      // Aliases and data streams whose name matches expand to all their indices.
      for (const name of expandedNames(state, (n) => re.test(n))) {
        const ix = all.find((i) => i.name === name);
        if (ix) chosen.set(ix.name, ix);
      }
      continue;
    }
    const named = expandedNames(state, (n) => n === expr);
    if (named.length > 0 && !all.some((i) => i.name === expr)) {
      for (const name of named) {
        const ix = all.find((i) => i.name === name);
        if (ix) chosen.set(ix.name, ix);
      }
      continue;
    }
    const ix = all.find((i) => i.name === expr);
    if (!ix) {
      throw esError(404, 'index_not_found_exception', `no such index [${expr}]`, {
        'resource.type': 'index_or_alias',
        'resource.id': expr,
        index_uuid: '_na_',
        index: expr,
      });
    }
    chosen.set(ix.name, ix);
  }
  return [...chosen.values()];
}

/** Indices behind the aliases and data streams whose name passes the test. */
function expandedNames(state: MockState, test: (name: string) => boolean): string[] {
  return [
    ...state.aliases.filter((a) => test(a.alias)).map((a) => a.index),
    ...state.dataStreams.filter((d) => test(d.name)).flatMap((d) => d.indices),
  ];
}

function catRow(ix: MockIndex, bytes: string | undefined): Record<string, string | null> {
  const closed = ix.status === 'close';
  const size = (n: number | undefined): string | null => (closed || n === undefined ? null : bytes === 'b' ? String(n) : humanBytes(n));
  return {
    health: closed ? null : (ix.health ?? 'green'),
    status: ix.status ?? 'open',
    index: ix.name,
    uuid: Buffer.from(ix.name).toString('base64url').slice(0, 22).padEnd(22, 'x'),
    pri: String(ix.shards ?? 1),
    rep: '1',
    'docs.count': closed ? null : String(ix.docs ?? 0),
    'docs.deleted': closed ? null : '0',
    'creation.date': String(ix.createdMs),
    'creation.date.string': new Date(ix.createdMs).toISOString(),
    'store.size': size(ix.storeBytes),
    'pri.store.size': size(ix.priStoreBytes ?? Math.floor(ix.storeBytes / 2)),
  };
}

const CAT_ALIASES: Record<string, string> = { i: 'index', idx: 'index', cd: 'creation.date', ss: 'store.size', s: 'status', h: 'health' };

function catIndices(state: MockState, target: string | undefined, q: Record<string, string>): unknown {
  if (q['format'] !== 'json') {
    // The text table is for people; housekeeper always asks for JSON.
    throw esError(400, 'illegal_argument_exception', 'this mock answers _cat/indices with format=json only');
  }
  const expand = (q['expand_wildcards'] ?? 'all').split(',');
  const rows = resolveIndices(state, target, expand).map((ix) => catRow(ix, q['bytes']));
  const h = q['h'];
  if (h === undefined) return rows;
  const cols = h.split(',').map((c) => CAT_ALIASES[c] ?? c);
  return rows.map((r) => Object.fromEntries(cols.filter((c) => c in r).map((c) => [c, r[c]])));
}

function snapshotInfo(repo: string, s: MockSnapshot, indexNames: boolean): Record<string, unknown> {
  const shards = s.shards ?? { total: 10, failed: s.state === 'SUCCESS' ? 0 : 1, successful: s.state === 'SUCCESS' ? 10 : 9 };
  const end = s.endMs ?? 0;
  return {
    snapshot: s.name,
    uuid: Buffer.from(`${repo}/${s.name}`).toString('base64url').slice(0, 22),
    repository: repo,
    version_id: 9_010_399,
    version: s.version ?? '9.1.3',
    ...(indexNames ? { indices: s.indices ?? [] } : {}),
    data_streams: [],
    include_global_state: true,
    state: s.state,
    start_time: new Date(s.startMs).toISOString(),
    start_time_in_millis: s.startMs,
    ...(s.endMs !== undefined ? { end_time: new Date(end).toISOString() } : {}),
    end_time_in_millis: end,
    duration_in_millis: s.endMs !== undefined ? end - s.startMs : 0,
    failures: [],
    shards,
    feature_states: [],
  };
}

function getSnapshots(state: MockState, repo: string, which: string, q: Record<string, string>): unknown {
  const list = state.repositories[repo];
  if (!list) throw esError(404, 'repository_missing_exception', `[${repo}] missing`);
  const sort = q['sort'] ?? 'start_time';
  if (sort !== 'start_time' && sort !== 'name') throw esError(400, 'illegal_argument_exception', `this mock sorts by start_time or name, not [${sort}]`);
  const desc = q['order'] === 'desc';
  let matched = which === '_all' || which === '*' ? [...list] : list.filter((s) => which.split(',').some((w) => globToRegExp(w).test(s.name)));
  if (which !== '_all' && which !== '*' && !which.includes('*') && matched.length === 0 && q['ignore_unavailable'] !== 'true') {
    throw esError(404, 'snapshot_missing_exception', `[${repo}:${which}] is missing`);
  }
  for (const s of matched) advanceSnapshot(s);
  matched.sort((a, b) => (sort === 'name' ? a.name.localeCompare(b.name) : a.startMs - b.startMs) * (desc ? -1 : 1));
  const total = matched.length;
  const offset = Number(q['offset'] ?? 0);
  const size = q['size'] !== undefined ? Number(q['size']) : -1;
  matched = matched.slice(offset, size >= 0 ? offset + size : undefined);
  const indexNames = q['index_names'] !== 'false';
  return {
    snapshots: matched.map((s) => snapshotInfo(repo, s, indexNames)),
    total,
    remaining: Math.max(0, total - offset - matched.length),
  };
}

/** A snapshot taken without waiting: IN_PROGRESS for its pending polls, then its final state. */
function advanceSnapshot(s: MockSnapshot): void {
  if (s.state !== 'IN_PROGRESS' || s.finalState === undefined) return;
  if ((s.pendingPolls ?? 0) > 0) {
    s.pendingPolls = (s.pendingPolls ?? 0) - 1;
    return;
  }
  s.state = s.finalState;
  s.endMs = Date.now();
  s.shards = { total: 10, successful: s.state === 'SUCCESS' ? 10 : 7, failed: s.state === 'SUCCESS' ? 0 : 3 };
}

const SNAPSHOT_NAME_FORBIDDEN = /[\\/*?"<>| ,#]/;

function createSnapshot(state: MockState, repo: string, name: string, q: Record<string, string>, body: unknown): unknown {
  const list = state.repositories[repo];
  if (!list) throw esError(404, 'repository_missing_exception', `[${repo}] missing`);
  if (name !== name.toLowerCase()) throw esError(400, 'invalid_snapshot_name_exception', `[${repo}:${name}] Invalid snapshot name [${name}], must be lowercase`);
  if (SNAPSHOT_NAME_FORBIDDEN.test(name) || name.startsWith('_')) {
    throw esError(400, 'invalid_snapshot_name_exception', `[${repo}:${name}] Invalid snapshot name [${name}], must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]`);
  }
  if (list.some((s) => s.name === name)) {
    throw esError(400, 'invalid_snapshot_name_exception', `[${repo}:${name}] Invalid snapshot name [${name}], snapshot with the same name already exists`);
  }
  const b = (body ?? {}) as { indices?: string | string[] };
  const exprs = b.indices === undefined ? undefined : Array.isArray(b.indices) ? b.indices.join(',') : b.indices;
  const indices = resolveIndices(state, exprs, ['all']).map((i) => i.name);
  const snap: MockSnapshot = { name, state: 'IN_PROGRESS', startMs: Date.now(), indices, request: body };
  list.push(snap);
  if (q['wait_for_completion'] === 'true') {
    snap.finalState = state.snapshotOutcome;
    snap.pendingPolls = 0;
    advanceSnapshot(snap);
    return { snapshot: snapshotInfo(repo, snap, true) };
  }
  snap.finalState = state.snapshotOutcome;
  snap.pendingPolls = state.snapshotPolls;
  return { accepted: true };
}

function dataStreams(state: MockState, name: string | undefined): unknown {
  const re = name === undefined || name === '*' || name === '_all' ? undefined : name.split(',').map(globToRegExp);
  const list = state.dataStreams.filter((d) => re === undefined || re.some((r) => r.test(d.name)));
  if (name !== undefined && !name.includes('*') && name !== '_all' && list.length === 0) {
    throw esError(404, 'index_not_found_exception', `no such index [${name}]`);
  }
  return {
    data_streams: list.map((d) => ({
      name: d.name,
      timestamp_field: { name: '@timestamp' },
      indices: d.indices.map((i) => ({ index_name: i, index_uuid: Buffer.from(i).toString('base64url').slice(0, 22), prefer_ilm: true, managed_by: 'Unmanaged' })),
      generation: d.indices.length,
      status: 'GREEN',
      template: `${d.name}-template`,
      hidden: false,
      system: false,
      allow_custom_routing: false,
      replicated: false,
      rollover_on_write: false,
      prefer_ilm: true,
      next_generation_managed_by: 'Unmanaged',
    })),
  };
}

function catAliases(state: MockState, name: string | undefined, q: Record<string, string>): unknown {
  if (q['format'] !== 'json') throw esError(400, 'illegal_argument_exception', 'this mock answers _cat/aliases with format=json only');
  const re = name === undefined ? undefined : name.split(',').map(globToRegExp);
  const rows = state.aliases
    .filter((a) => re === undefined || re.some((r) => r.test(a.alias)))
    .map((a) => ({
      alias: a.alias,
      index: a.index,
      filter: '-',
      'routing.index': '-',
      'routing.search': '-',
      is_write_index: a.isWriteIndex === undefined ? '-' : String(a.isWriteIndex),
    }));
  const h = q['h'];
  if (h === undefined) return rows;
  const cols = h.split(',');
  return rows.map((r) => Object.fromEntries(cols.filter((c) => c in r).map((c) => [c, r[c as keyof typeof r]])));
}

function globMatch(pattern: string, name: string): boolean {
  return pattern.split(',').some((p) => globToRegExp(p).test(name));
}

function indexSettings(state: MockState, target: string, name: string | undefined, q: Record<string, string>): unknown {
  const out: Record<string, unknown> = {};
  for (const ix of resolveIndices(state, target, (q['expand_wildcards'] ?? 'open,closed').split(','))) {
    const flat: Record<string, string> = {
      'index.number_of_shards': String(ix.shards ?? 1),
      'index.number_of_replicas': '1',
      'index.creation_date': String(ix.createdMs),
      'index.provided_name': ix.name,
      ...(ix.hidden ? { 'index.hidden': 'true' } : {}),
      ...ix.settings,
    };
    const chosen = Object.entries(flat).filter(([k]) => name === undefined || globMatch(name, k));
    if (q['flat_settings'] === 'true') {
      out[ix.name] = { settings: Object.fromEntries(chosen) };
      continue;
    }
    const nested: Record<string, unknown> = {};
    for (const [k, v] of chosen) {
      const parts = k.split('.');
      let node = nested;
      for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
      node[parts[parts.length - 1] as string] = v;
    }
    out[ix.name] = { settings: nested };
  }
  return out;
}

function indexStats(state: MockState, target: string, q: Record<string, string>): unknown {
  const chosen = resolveIndices(state, target, (q['expand_wildcards'] ?? 'open').split(',')).filter((ix) => ix.status !== 'close');
  const stats = (ix: MockIndex) => {
    const segments = ix.segments ?? ix.shards ?? 1;
    return {
      uuid: Buffer.from(ix.name).toString('base64url').slice(0, 22),
      health: ix.health ?? 'green',
      status: 'open',
      primaries: { segments: { count: segments } },
      total: { segments: { count: segments * 2 } },
    };
  };
  const shards = chosen.reduce((n, ix) => n + (ix.shards ?? 1) * 2, 0);
  const all = chosen.reduce((n, ix) => n + (ix.segments ?? ix.shards ?? 1), 0);
  return {
    _shards: { total: shards, successful: shards, failed: 0 },
    _all: { primaries: { segments: { count: all } }, total: { segments: { count: all * 2 } } },
    indices: Object.fromEntries(chosen.map((ix) => [ix.name, stats(ix)])),
  };
}

function deleteIndex(state: MockState, target: string): unknown {
  const exprs = target.split(',');
  for (const expr of exprs) {
    if (expr.includes('*') || expr === '_all') {
      // action.destructive_requires_name defaults to true since 8.0.
      throw esError(400, 'illegal_argument_exception', 'Wildcard expressions or all indices are not allowed');
    }
  }
  const victims = exprs.map((expr) => {
    const ix = state.indices.find((i) => i.name === expr);
    if (!ix) throw esError(404, 'index_not_found_exception', `no such index [${expr}]`, { 'resource.type': 'index_or_alias', 'resource.id': expr, index_uuid: '_na_', index: expr });
    const ds = state.dataStreams.find((d) => d.indices[d.indices.length - 1] === expr);
    if (ds) throw esError(400, 'illegal_argument_exception', `index [${expr}] is the write index for data stream [${ds.name}] and cannot be deleted`);
    return ix;
  });
  const names = new Set(victims.map((v) => v.name));
  state.indices = state.indices.filter((i) => !names.has(i.name));
  state.aliases = state.aliases.filter((a) => !names.has(a.index));
  for (const d of state.dataStreams) d.indices = d.indices.filter((i) => !names.has(i));
  return { acknowledged: true };
}

let taskSeq = 0;

function mergeNow(ix: MockIndex, maxSegments: number | undefined): void {
  const shards = ix.shards ?? 1;
  ix.segments = Math.min(ix.segments ?? shards, shards * (maxSegments ?? 1));
}

function forcemerge(state: MockState, target: string, q: Record<string, string>): unknown {
  const chosen = resolveIndices(state, target, (q['expand_wildcards'] ?? 'open').split(','));
  const closed = chosen.find((ix) => ix.status === 'close');
  if (closed) throw esError(400, 'index_closed_exception', 'closed', { 'index_uuid': '_na_', index: closed.name });
  const max = q['max_num_segments'] === undefined ? undefined : Number(q['max_num_segments']);
  const shards = chosen.reduce((n, ix) => n + (ix.shards ?? 1) * 2, 0);
  if (q['wait_for_completion'] === 'false') {
    const id = ++taskSeq;
    const key = `mock-node-1:${id}`;
    state.tasks[key] = { node: 'mock-node-1', id, index: chosen.map((i) => i.name), startMs: Date.now(), pollsLeft: state.forcemergePolls, completed: false };
    (state.tasks[key] as MockTask & { maxSegments?: number }).maxSegments = max;
    return { task: key };
  }
  for (const ix of chosen) mergeNow(ix, max);
  return { _shards: { total: shards, successful: shards, failed: 0 } };
}

function getTask(state: MockState, id: string): unknown {
  const t = state.tasks[id];
  if (!t) throw esError(404, 'resource_not_found_exception', `task [${id}] isn't running and hasn't stored its results`);
  if (!t.completed && t.pollsLeft > 0) t.pollsLeft--;
  else if (!t.completed) {
    t.completed = true;
    for (const name of t.index) {
      const ix = state.indices.find((i) => i.name === name);
      if (ix) mergeNow(ix, (t as MockTask & { maxSegments?: number }).maxSegments);
    }
  }
  const shards = t.index.reduce((n, name) => n + (state.indices.find((i) => i.name === name)?.shards ?? 1) * 2, 0);
  return {
    completed: t.completed,
    task: {
      node: t.node,
      id: t.id,
      type: 'transport',
      action: 'indices:admin/forcemerge',
      description: `Force-merge indices [${t.index.join(', ')}], maxSegments[1], onlyExpungeDeletes[false], flush[true]`,
      start_time_in_millis: t.startMs,
      running_time_in_nanos: (Date.now() - t.startMs) * 1e6,
      cancellable: false,
      headers: {},
    },
    ...(t.completed ? { response: { _shards: { total: shards, successful: shards, failed: 0 } } } : {}),
  };
}

function compatibleVersion(value: string | undefined): number | undefined {
  const m = /compatible-with=(\d+)/.exec(value ?? '');
  return m ? Number(m[1]) : undefined;
}

function route(state: MockState, method: string, path: string, q: Record<string, string>, body: unknown): unknown {
  const checkParams = (allowed: string[]): void => {
    for (const k of Object.keys(q)) {
      if (!allowed.includes(k) && !COMMON_PARAMS.includes(k)) {
        throw esError(400, 'illegal_argument_exception', `request [${path}] contains unrecognized parameter: [${k}]`);
      }
    }
  };
  const parts = path.split('/').filter((p) => p !== '').map(decodeURIComponent);
  const wrongMethod = (allowed: string): never => {
    throw new HttpError(405, { error: `Incorrect HTTP method for uri [${path}] and method [${method}], allowed: [${allowed}]`, status: 405 });
  };
  const p0 = parts[0];
  // Write APIs first; everything else is read-only (GET/HEAD).
  if (parts[0] === '_snapshot' && parts.length === 3 && (method === 'PUT' || method === 'POST')) {
    checkParams(SNAPSHOT_CREATE_PARAMS);
    return createSnapshot(state, parts[1] as string, parts[2] as string, q, body);
  }
  if (p0 !== undefined && !p0.startsWith('_') && parts.length === 1 && method === 'DELETE') {
    checkParams(DELETE_INDEX_PARAMS);
    return deleteIndex(state, p0);
  }
  if (p0 !== undefined && parts[1] === '_forcemerge' && parts.length === 2) {
    if (method !== 'POST') wrongMethod('POST');
    checkParams(FORCEMERGE_PARAMS);
    return forcemerge(state, p0, q);
  }
  if (method !== 'GET' && method !== 'HEAD') wrongMethod('GET');
  if (p0 === '_data_stream' && parts.length <= 2) {
    checkParams(DATA_STREAM_PARAMS);
    return dataStreams(state, parts[1]);
  }
  if (p0 === '_cat' && parts[1] === 'aliases' && parts.length <= 3) {
    checkParams(CAT_ALIASES_PARAMS);
    return catAliases(state, parts[2], q);
  }
  if (p0 === '_tasks' && parts.length === 2) {
    checkParams(TASK_PARAMS);
    return getTask(state, parts[1] as string);
  }
  if (p0 !== undefined && !p0.startsWith('_') && parts[1] === '_settings' && parts.length <= 3) {
    checkParams(SETTINGS_PARAMS);
    return indexSettings(state, p0, parts[2], q);
  }
  if (p0 !== undefined && !p0.startsWith('_') && parts[1] === '_stats' && parts.length <= 3) {
    checkParams(STATS_PARAMS);
    return indexStats(state, p0, q);
  }
  if (parts.length === 0) {
    checkParams([]);
    return {
      name: 'node-1',
      cluster_name: state.clusterName,
      cluster_uuid: 'mock-cluster-uuid',
      version: { number: state.version, build_flavor: 'default', build_type: 'docker', lucene_version: '10.2.2', minimum_wire_compatibility_version: '8.19.0', minimum_index_compatibility_version: '8.0.0' },
      tagline: 'You Know, for Search',
    };
  }
  if (parts[0] === '_cluster' && parts[1] === 'health' && parts.length <= 3) {
    checkParams(HEALTH_PARAMS);
    return {
      cluster_name: state.clusterName,
      status: state.health,
      timed_out: false,
      number_of_nodes: state.numberOfNodes,
      number_of_data_nodes: state.numberOfDataNodes,
      active_primary_shards: state.activePrimaryShards,
      active_shards: state.activeShards,
      relocating_shards: state.relocatingShards,
      initializing_shards: state.initializingShards,
      unassigned_shards: state.unassignedShards,
      unassigned_primary_shards: 0,
      delayed_unassigned_shards: state.delayedUnassignedShards,
      number_of_pending_tasks: state.pendingTasks,
      number_of_in_flight_fetch: 0,
      task_max_waiting_in_queue_millis: 0,
      active_shards_percent_as_number: state.activeShards === 0 ? 100 : (100 * state.activeShards) / (state.activeShards + state.unassignedShards),
    };
  }
  if (p0 === '_nodes' && (parts[1] === 'stats' || parts[2] === 'stats') && parts.length <= 4) {
    checkParams(NODES_STATS_PARAMS);
    const [ids, metric] = parts[1] === 'stats' ? [undefined, parts[2]] : [parts[1], parts[3]];
    try {
      return nodesStats(state.clusterName, state.nodes, ids, metric);
    } catch (err) {
      if (err instanceof NodeStatsRequestError) throw esError(400, 'illegal_argument_exception', err.message);
      throw err;
    }
  }
  if (parts[0] === '_cat' && parts[1] === 'indices' && parts.length <= 3) {
    checkParams(CAT_PARAMS);
    return catIndices(state, parts[2], q);
  }
  if (parts[0] === '_snapshot' && parts.length === 3 && parts[1] !== undefined && parts[2] !== undefined) {
    checkParams(SNAPSHOT_PARAMS);
    return getSnapshots(state, parts[1], parts[2], q);
  }
  throw new HttpError(400, { error: `no handler found for uri [${path}] and method [${method}]`, status: 400 });
}

export async function startElasticsearchMock(initial: Partial<MockState> = {}): Promise<ElasticsearchMock> {
  const state: MockState = { ...defaultState(), ...initial };
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let accepted = 0;
  const mock: { state: MockState } = { state };

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://localhost');
    const query = Object.fromEntries(u.searchParams);
    const recorded: RecordedRequest = { method: req.method ?? 'GET', path: u.pathname, query, headers: req.headers };
    requests.push(recorded);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(req, res, u, query, recorded, Buffer.concat(chunks).toString('utf8')));
  });
  const answer = (req: http.IncomingMessage, res: http.ServerResponse, u: URL, query: Record<string, string>, recorded: RecordedRequest, text: string): void => {
    let parsed: unknown;
    let badBody = false;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        badBody = true;
      }
    }
    recorded.body = parsed;
    const s = mock.state;
    if (s.hang) return; // read, never answered
    const headers: Record<string, string> = {};
    if (s.productHeader) headers['x-elastic-product'] = 'Elasticsearch';
    const major = Number(s.version.split('.')[0]);
    const asked = compatibleVersion(req.headers.accept) ?? compatibleVersion(req.headers['content-type']);
    headers['content-type'] = asked !== undefined ? `application/vnd.elasticsearch+json;compatible-with=${asked}` : 'application/json';
    let status = 200;
    let body: unknown;
    try {
      const acc = compatibleVersion(req.headers.accept);
      const ct = compatibleVersion(req.headers['content-type']);
      for (const [name, v] of [['Accept', acc], ['Content-Type', ct]] as const) {
        if (v !== undefined && v !== major && v !== major - 1) {
          throw esError(400, 'media_type_header_exception', `Invalid media-type value on headers [${name}]`, {
            caused_by: { type: 'status_exception', reason: `${name} version must be either version ${major} or ${major - 1}, but found ${v}. ${name}=${name === 'Accept' ? req.headers.accept : req.headers['content-type']}` },
          });
        }
      }
      if (acc !== undefined && ct !== undefined && acc !== ct) {
        throw esError(400, 'media_type_header_exception', 'Invalid media-type value on headers [Accept, Content-Type]');
      }
      if (s.auth) {
        const expected = `Basic ${Buffer.from(`${s.auth.username}:${s.auth.password}`).toString('base64')}`;
        const given = req.headers.authorization;
        if (given !== expected) {
          const reason = given === undefined ? `missing authentication credentials for REST request [${u.pathname}]` : `unable to authenticate user [${Buffer.from((given.split(' ')[1] ?? ''), 'base64').toString().split(':')[0]}] for REST request [${u.pathname}]`;
          const e = esError(401, 'security_exception', reason, { header: { 'WWW-Authenticate': ['Basic realm="security", charset="UTF-8"', 'ApiKey'] } });
          throw new HttpError(401, e.body, { 'www-authenticate': 'Basic realm="security", charset="UTF-8"' });
        }
      }
      if (s.fail && (s.fail.path === undefined || s.fail.path.test(u.pathname)) && (s.fail.method === undefined || s.fail.method === req.method)) throw esError(s.fail.status, s.fail.type, s.fail.reason);
      if (badBody) throw esError(400, 'parse_exception', 'request body is required to be valid JSON');
      body = route(s, req.method ?? 'GET', u.pathname, query, parsed);
    } catch (err) {
      // A bug in the mock answers 500 rather than crashing the test process.
      const e = err instanceof HttpError ? err : esError(500, 'mock_error', String(err));
      status = e.status;
      body = e.body;
      Object.assign(headers, e.headers);
    }
    const out = JSON.stringify(body);
    res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(out)) });
    res.end(req.method === 'HEAD' ? undefined : out);
  };
  server.on('connection', (sock: Socket) => {
    accepted++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  // No server-side timeouts: a hung Elasticsearch keeps the socket until the client gives up.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    urlWith: (username, password) => `http://${encodeURIComponent(username)}:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    get state() {
      return mock.state;
    },
    set state(v: MockState) {
      mock.state = v;
    },
    requests,
    openConnections: () => sockets.size,
    acceptedConnections: () => accepted,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
