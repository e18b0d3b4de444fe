import type { RedisTarget } from '../targets/redis.ts';
import type { MetricFactory } from '../metrics/registry.ts';
import { defineCollector } from './collector.ts';

// Redis, with redis_exporter's names. One pipelined round trip of non-blocking commands
// (INFO, CONFIG GET maxclients, SLOWLOG LEN / GET 1); never KEYS or anything that scans.

function declare(f: MetricFactory) {
  const g = f.gauge.bind(f);
  const c = f.counter.bind(f);
  return {
    up: g('redis_up', 'Whether the Redis server answered (1) or not (0).'),
    info: g('redis_instance_info', 'Information about the Redis instance (value 1).', ['redis_version', 'redis_mode', 'role']),
    uptime: g('redis_uptime_in_seconds', 'Seconds since the server started; it drops on a restart.'),
    startTime: g('redis_start_time_seconds', 'When the server started, seconds since epoch.'),
    memUsed: g('redis_memory_used_bytes', 'Memory allocated by Redis.'),
    memRss: g('redis_memory_used_rss_bytes', 'Resident memory of the Redis process.'),
    memMax: g('redis_memory_max_bytes', 'Config maxmemory (0: no limit).'),
    frag: g('redis_mem_fragmentation_ratio', 'RSS divided by allocated memory.'),
    hits: c('redis_keyspace_hits_total', 'Successful key lookups.'),
    misses: c('redis_keyspace_misses_total', 'Failed key lookups.'),
    evicted: c('redis_evicted_keys_total', 'Keys evicted because of maxmemory.'),
    expired: c('redis_expired_keys_total', 'Keys expired.'),
    clients: g('redis_connected_clients', 'Client connections.'),
    blocked: g('redis_blocked_clients', 'Clients blocked in a blocking command.'),
    maxClients: g('redis_config_maxclients', 'Config maxclients.'),
    rejected: c('redis_rejected_connections_total', 'Connections rejected because of maxclients.'),
    received: c('redis_connections_received_total', 'Connections accepted.'),
    commands: c('redis_commands_processed_total', 'Commands processed.'),
    ops: g('redis_instantaneous_ops_per_sec', 'Commands per second, as Redis samples it.'),
    dbKeys: g('redis_db_keys', 'Keys in the database.', ['db']),
    dbExpiring: g('redis_db_keys_expiring', 'Keys with an expiry in the database.', ['db']),
    dbAvgTtl: g('redis_db_avg_ttl_seconds', 'Average TTL of keys with an expiry in the database.', ['db']),
    lastSave: g('redis_rdb_last_save_timestamp_seconds', 'Last successful RDB save, seconds since epoch.'),
    lastSaveOk: g('redis_rdb_last_bgsave_status', 'Whether the last background save succeeded (1) or failed (0).'),
    changes: g('redis_rdb_changes_since_last_save', 'Writes since the last RDB save.'),
    slowlogLen: g('redis_slowlog_length', 'Entries in the slow log.'),
    slowlogLastId: g('redis_slowlog_last_id', 'Id of the newest slow log entry.'),
    lastSlow: g('redis_last_slow_execution_duration_seconds', 'Duration of the newest slow log entry.'),
    replicas: g('redis_connected_slaves', 'Replicas connected to this server.'),
  };
}
type Metrics = ReturnType<typeof declare>;

/** Parses INFO's "key:value" lines into a map; section headers and blanks are skipped. */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

/** "keys=3,expires=1,avg_ttl=5000" → { keys: 3, expires: 1, avg_ttl: 5000 } */
function parseKeyspace(value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of value.split(',')) {
    const [k, v] = part.split('=');
    if (k !== undefined && v !== undefined) out[k] = Number(v);
  }
  return out;
}

// INFO gives uptime in whole seconds, so "now - uptime" wobbles by a second between scrapes
// and would look like restarts. The start time is computed once per server run (run_id).
const starts = new WeakMap<RedisTarget, { runId: string; start: number }>();

function startTime(target: RedisTarget, info: Map<string, string>): number | undefined {
  const runId = info.get('run_id');
  const uptime = Number(info.get('uptime_in_seconds'));
  const nowUs = Number(info.get('server_time_usec'));
  if (runId === undefined || !Number.isFinite(uptime)) return undefined;
  const known = starts.get(target);
  if (known?.runId === runId) return known.start;
  const now = Number.isFinite(nowUs) ? nowUs / 1e6 : Date.now() / 1000;
  const start = Math.floor(now - uptime);
  starts.set(target, { runId, start });
  return start;
}

export default defineCollector<RedisTarget, Metrics>({
  name: 'redis',
  enabledByDefault: true,
  targets: (t) => t.redis,
  metrics: declare,
  up: (m) => m.up,
  async collect(ctx, m) {
    const set = ctx.set;
    await ctx.target.ready(ctx.signal);
    const results = await ctx.target.client
      .pipeline()
      .info()
      .config('GET', 'maxclients')
      .slowlog('LEN')
      .slowlog('GET', 1)
      .exec();
    if (!results) throw new Error('redis pipeline returned nothing');
    const [infoRes, cfgRes, lenRes, getRes] = results;
    if (!infoRes || infoRes[0]) throw infoRes?.[0] ?? new Error('INFO failed');
    const info = parseInfo(String(infoRes[1]));
    const n = (key: string): number | undefined => {
      const v = info.get(key);
      return v === undefined ? undefined : Number(v);
    };
    const setIf = (metric: Parameters<typeof set>[0], key: string, scale = 1): void => {
      const v = n(key);
      if (v !== undefined && Number.isFinite(v)) set(metric, {}, v * scale);
    };
    set(m.info, { redis_version: info.get('redis_version') ?? '', redis_mode: info.get('redis_mode') ?? '', role: info.get('role') ?? '' }, 1);
    setIf(m.uptime, 'uptime_in_seconds');
    const start = startTime(ctx.target, info);
    if (start !== undefined) set(m.startTime, {}, start);
    setIf(m.memUsed, 'used_memory');
    setIf(m.memRss, 'used_memory_rss');
    setIf(m.memMax, 'maxmemory');
    setIf(m.frag, 'mem_fragmentation_ratio');
    setIf(m.hits, 'keyspace_hits');
    setIf(m.misses, 'keyspace_misses');
    setIf(m.evicted, 'evicted_keys');
    setIf(m.expired, 'expired_keys');
    setIf(m.clients, 'connected_clients');
    setIf(m.blocked, 'blocked_clients');
    setIf(m.rejected, 'rejected_connections');
    setIf(m.received, 'total_connections_received');
    setIf(m.commands, 'total_commands_processed');
    setIf(m.ops, 'instantaneous_ops_per_sec');
    setIf(m.lastSave, 'rdb_last_save_time');
    setIf(m.changes, 'rdb_changes_since_last_save');
    setIf(m.replicas, 'connected_slaves');
    const bgsave = info.get('rdb_last_bgsave_status');
    if (bgsave !== undefined) set(m.lastSaveOk, {}, bgsave === 'ok' ? 1 : 0);
    for (const [key, value] of info) {
      const db = /^db(\d+)$/.exec(key)?.[1];
      if (db === undefined) continue;
      const ks = parseKeyspace(value);
      set(m.dbKeys, { db: `db${db}` }, ks['keys'] ?? 0);
      set(m.dbExpiring, { db: `db${db}` }, ks['expires'] ?? 0);
      set(m.dbAvgTtl, { db: `db${db}` }, (ks['avg_ttl'] ?? 0) / 1000);
    }
    // CONFIG and SLOWLOG may be renamed away on managed servers; their absence is no failure.
    const cfg = cfgRes && !cfgRes[0] ? (cfgRes[1] as string[]) : undefined;
    if (cfg && cfg[1] !== undefined) set(m.maxClients, {}, Number(cfg[1]));
    if (lenRes && !lenRes[0]) set(m.slowlogLen, {}, Number(lenRes[1]));
    if (getRes && !getRes[0]) {
      const entries = getRes[1] as unknown[][];
      const newest = entries[0];
      set(m.slowlogLastId, {}, newest ? Number(newest[0]) : 0);
      set(m.lastSlow, {}, newest ? Number(newest[2]) / 1e6 : 0);
    }
  },
});
