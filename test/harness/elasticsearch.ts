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
// - `hang: true` accepts connections and reads requests but never answers.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

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
}

export interface MockFailure {
  status: number;
  type: string;
  reason: string | null;
  /** Only requests whose path matches; all requests when absent. */
  path?: RegExp;
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
  indices: MockIndex[];
  /** Snapshot repositories by name. */
  repositories: Record<string, MockSnapshot[]>;
  /** When set, every request needs this basic auth. */
  auth: { username: string; password: string } | undefined;
  fail: MockFailure | undefined;
  hang: boolean;
  productHeader: boolean;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
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

export function defaultState(): MockState {
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
    indices: [],
    repositories: {},
    auth: undefined,
    fail: undefined,
    hang: false,
    productHeader: true,
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

function catRow(ix: MockIndex, bytes: string | undefined): Record<string, string | null> {
  const closed = ix.status === 'close';
  const size = (n: number | undefined): string | null => (closed || n === undefined ? null : bytes === 'b' ? String(n) : humanBytes(n));
  return {
    health: closed ? null : (ix.health ?? 'green'),
    status: ix.status ?? 'open',
    index: ix.name,
    uuid: Buffer.from(ix.name).toString('base64url').slice(0, 22).padEnd(22, 'x'),
    pri: '1',
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
  if (which !== '_all' && which !== '*' && !which.includes('*') && matched.length === 0) {
    throw esError(404, 'snapshot_missing_exception', `[${repo}:${which}] is missing`);
  }
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

function compatibleVersion(value: string | undefined): number | undefined {
  const m = /compatible-with=(\d+)/.exec(value ?? '');
  return m ? Number(m[1]) : undefined;
}

function route(state: MockState, method: string, path: string, q: Record<string, string>): unknown {
  const checkParams = (allowed: string[]): void => {
    for (const k of Object.keys(q)) {
      if (!allowed.includes(k) && !COMMON_PARAMS.includes(k)) {
        throw esError(400, 'illegal_argument_exception', `request [${path}] contains unrecognized parameter: [${k}]`);
      }
    }
  };
  if (method !== 'GET' && method !== 'HEAD') {
    throw new HttpError(405, { error: `Incorrect HTTP method for uri [${path}] and method [${method}], allowed: [GET]`, status: 405 });
  }
  const parts = path.split('/').filter((p) => p !== '').map(decodeURIComponent);
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
    requests.push({ method: req.method ?? 'GET', path: u.pathname, query, headers: req.headers });
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
      if (s.fail && (s.fail.path === undefined || s.fail.path.test(u.pathname))) throw esError(s.fail.status, s.fail.type, s.fail.reason);
      body = route(s, req.method ?? 'GET', u.pathname, query);
    } catch (err) {
      // A bug in the mock answers 500 rather than crashing the test process.
      const e = err instanceof HttpError ? err : esError(500, 'mock_error', String(err));
      status = e.status;
      body = e.body;
      Object.assign(headers, e.headers);
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(text)) });
    res.end(req.method === 'HEAD' ? undefined : text);
  });
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
