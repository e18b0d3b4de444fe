import type { RedisTarget } from '../targets/redis.ts';
import type { MetricFactory } from '../metrics/registry.ts';
import { num } from '../util/values.ts';
import { defineCollector } from './collector.ts';
import { commandStat, INFO_FIELDS, parseFields, parseInfo, replicaLine } from './redis-info.ts';

// Redis, with redis_exporter's names and labels. One pipelined round trip of non-blocking
// commands (INFO ALL, CONFIG GET maxclients, SLOWLOG LEN / GET 1); never KEYS or anything
// that scans. INFO ALL (as redis_exporter sends it) adds commandstats and errorstats to the
// default sections: a few kB more per scrape, read in the same round trip.

/** A primary lists each replica; more than this many are not reported one by one. */
const MAX_REPLICAS = 64;

function declare(f: MetricFactory) {
  const g = f.gauge.bind(f);
  const c = f.counter.bind(f);
  const fields = INFO_FIELDS.map((field) => ({ field, family: field.type === 'gauge' ? g(field.metric, field.help) : c(field.metric, field.help) }));
  const MASTER = ['master_host', 'master_port'];
  const SLAVE = ['slave_ip', 'slave_port', 'slave_state'];
  return {
    up: g('redis_up', 'Whether the Redis server answered (1) or not (0).'),
    fields,
    info: g('redis_instance_info', 'Information about the Redis instance (value 1).', [
      'maxmemory_policy', 'os', 'process_id', 'redis_build_id', 'redis_mode', 'redis_version', 'role', 'run_id', 'tcp_port',
    ]),
    startTime: g('redis_start_time_seconds', 'When the server started, seconds since epoch.'),
    maxClients: g('redis_config_maxclients', 'Config maxclients.'),
    dbKeys: g('redis_db_keys', 'Keys in the database.', ['db']),
    dbExpiring: g('redis_db_keys_expiring', 'Keys with an expiry in the database.', ['db']),
    dbAvgTtl: g('redis_db_avg_ttl_seconds', 'Average TTL of keys with an expiry in the database.', ['db']),
    slowlogLen: g('redis_slowlog_length', 'Entries in the slow log.'),
    slowlogLastId: g('redis_slowlog_last_id', 'Id of the newest slow log entry.'),
    lastSlow: g('redis_last_slow_execution_duration_seconds', 'Duration of the newest slow log entry.'),
    // cmd: Redis's own command table (about 240 commands and their subcommands in 7.0, as
    // "config|get"), so the label set is bounded by the server, not by clients.
    cmdCalls: c('redis_commands_total', 'Calls per command (INFO commandstats). cmd is bounded by Redis\'s own command table.', ['cmd']),
    cmdSeconds: c('redis_commands_duration_seconds_total', 'Time spent per command (INFO commandstats). cmd is bounded by Redis\'s own command table.', ['cmd']),
    cmdRejected: c('redis_commands_rejected_calls_total', 'Calls per command rejected before running (unknown, wrong arity, ACL, OOM; Redis 6.2+).', ['cmd']),
    cmdFailed: c('redis_commands_failed_calls_total', 'Calls per command that ran and failed (Redis 6.2+).', ['cmd']),
    // err: the error reply's first word; Redis 7 keeps at most 128 of them in errorstats.
    errors: c('redis_errors_total', 'Error replies per error prefix (INFO errorstats; Redis 6.2+, at most 128 prefixes).', ['err']),
    replicaLag: g('redis_connected_slave_lag_seconds', 'Seconds since each replica last acknowledged (on a primary).', SLAVE),
    replicaOffset: g('redis_connected_slave_offset_bytes', 'Replication offset each replica acknowledged, bytes (on a primary).', SLAVE),
    slaveInfo: g('redis_slave_info', 'This server is a replica of master_host:master_port (value 1).', [...MASTER, 'read_only']),
    slaveOffset: g('redis_slave_repl_offset', 'Replication offset this replica processed, bytes.', MASTER),
    linkUp: g('redis_master_link_up', 'Whether this replica\'s link to its primary is up (1) or down (0).', MASTER),
    lastIo: g('redis_master_last_io_seconds_ago', 'Seconds since this replica last heard from its primary (-1: link down).', MASTER),
    syncing: g('redis_master_sync_in_progress', 'Whether this replica is syncing from its primary (1) or not (0).', MASTER),
  };
}
type Metrics = ReturnType<typeof declare>;

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
      .info('all')
      .config('GET', 'maxclients')
      .slowlog('LEN')
      .slowlog('GET', 1)
      .exec();
    if (!results) throw new Error('redis pipeline returned nothing');
    const [infoRes, cfgRes, lenRes, getRes] = results;
    if (!infoRes || infoRes[0]) throw infoRes?.[0] ?? new Error('INFO failed');
    const info = parseInfo(String(infoRes[1]));
    for (const { field, family } of m.fields) {
      const raw = info.get(field.key);
      if (raw === undefined) continue;
      const v = field.ok ? (raw === 'ok' ? 1 : 0) : Number(raw) * (field.scale ?? 1);
      if (Number.isFinite(v)) set(family, {}, v);
    }
    const s = (key: string): string => info.get(key) ?? '';
    set(m.info, {
      maxmemory_policy: s('maxmemory_policy'),
      os: s('os'),
      process_id: s('process_id'),
      redis_build_id: s('redis_build_id'),
      redis_mode: s('redis_mode'),
      redis_version: s('redis_version'),
      role: s('role'),
      run_id: s('run_id'),
      tcp_port: s('tcp_port'),
    }, 1);
    const start = startTime(ctx.target, info);
    if (start !== undefined) set(m.startTime, {}, start);
    let replicas = 0;
    for (const [key, value] of info) {
      const cmd = commandStat(key, value);
      if (cmd) {
        set(m.cmdCalls, { cmd: cmd.cmd }, cmd.calls);
        set(m.cmdSeconds, { cmd: cmd.cmd }, cmd.seconds);
        set(m.cmdRejected, { cmd: cmd.cmd }, cmd.rejected);
        set(m.cmdFailed, { cmd: cmd.cmd }, cmd.failed);
        continue;
      }
      if (key.startsWith('errorstat_')) {
        set(m.errors, { err: key.slice('errorstat_'.length) }, Number(parseFields(value)['count']) || 0);
        continue;
      }
      const db = /^db(\d+)$/.exec(key)?.[1];
      if (db !== undefined) {
        const ks = parseFields(value);
        set(m.dbKeys, { db: `db${db}` }, Number(ks['keys']) || 0);
        set(m.dbExpiring, { db: `db${db}` }, Number(ks['expires']) || 0);
        set(m.dbAvgTtl, { db: `db${db}` }, (Number(ks['avg_ttl']) || 0) / 1000);
        continue;
      }
      const replica = replicaLine(key, value);
      if (replica && replicas++ < MAX_REPLICAS) {
        const l = { slave_ip: replica.ip, slave_port: replica.port, slave_state: replica.state };
        set(m.replicaLag, l, replica.lag);
        set(m.replicaOffset, l, replica.offset);
      }
    }
    if (info.get('role') === 'slave') {
      const l = { master_host: s('master_host'), master_port: s('master_port') };
      set(m.slaveInfo, { ...l, read_only: s('slave_read_only') }, 1);
      const field = (key: string): number | undefined => num(info.get(key));
      const offset = field('slave_repl_offset');
      if (offset !== undefined) set(m.slaveOffset, l, offset);
      set(m.linkUp, l, s('master_link_status') === 'up' ? 1 : 0);
      const io = field('master_last_io_seconds_ago');
      if (io !== undefined) set(m.lastIo, l, io);
      const sync = field('master_sync_in_progress');
      if (sync !== undefined) set(m.syncing, l, sync);
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
