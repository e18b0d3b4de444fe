// INFO fields that map one-to-one onto a redis_exporter metric: name, type and scale as
// redis_exporter 1.45 serves them (checked against the binary by test/redis-anchor.test.ts),
// so its dashboards and alerts read them unchanged. Fields a server does not report (older
// versions, another allocator) are simply absent, as with redis_exporter.

export interface InfoField {
  /** The INFO key. */
  key: string;
  metric: string;
  type: 'gauge' | 'counter';
  help: string;
  /** Multiplier to the metric's base unit (1e-6 for microseconds). Default 1. */
  scale?: number;
  /** "ok"/"err" fields: 1 when the value is "ok". */
  ok?: boolean;
}

const g = (key: string, metric: string, help: string, scale?: number): InfoField => ({ key, metric, type: 'gauge', help, ...(scale === undefined ? {} : { scale }) });
const c = (key: string, metric: string, help: string, scale?: number): InfoField => ({ key, metric, type: 'counter', help, ...(scale === undefined ? {} : { scale }) });
const ok = (key: string, metric: string, help: string): InfoField => ({ key, metric, type: 'gauge', help, ok: true });

export const INFO_FIELDS: readonly InfoField[] = [
  // Server
  g('uptime_in_seconds', 'redis_uptime_in_seconds', 'Seconds since the server started; it drops on a restart.'),
  g('process_id', 'redis_process_id', 'Pid of the Redis process.'),
  g('io_threads_active', 'redis_io_threads_active', 'Whether I/O threads are active (1) or not (0).'),
  // Clients
  g('connected_clients', 'redis_connected_clients', 'Client connections.'),
  g('blocked_clients', 'redis_blocked_clients', 'Clients blocked in a blocking command.'),
  g('tracking_clients', 'redis_tracking_clients', 'Clients with client-side caching tracking on.'),
  g('clients_in_timeout_table', 'redis_clients_in_timeout_table', 'Blocked clients with a timeout.'),
  g('client_recent_max_input_buffer', 'redis_client_recent_max_input_buffer_bytes', 'Largest client input buffer recently.'),
  g('client_recent_max_output_buffer', 'redis_client_recent_max_output_buffer_bytes', 'Largest client output buffer recently.'),
  g('cluster_connections', 'redis_cluster_connections', 'Connections of the cluster bus.'),
  // Memory
  g('used_memory', 'redis_memory_used_bytes', 'Memory allocated by Redis.'),
  g('used_memory_rss', 'redis_memory_used_rss_bytes', 'Resident memory of the Redis process.'),
  g('used_memory_peak', 'redis_memory_used_peak_bytes', 'Peak memory allocated by Redis.'),
  g('used_memory_overhead', 'redis_memory_used_overhead_bytes', 'Memory Redis uses for its own structures (not the data set).'),
  g('used_memory_startup', 'redis_memory_used_startup_bytes', 'Memory Redis used at startup.'),
  g('used_memory_dataset', 'redis_memory_used_dataset_bytes', 'Memory of the data set (used minus overhead).'),
  g('used_memory_lua', 'redis_memory_used_lua_bytes', 'Memory of the Lua engine.'),
  g('used_memory_scripts', 'redis_memory_used_scripts_bytes', 'Memory of cached scripts.'),
  g('maxmemory', 'redis_memory_max_bytes', 'Config maxmemory (0: no limit).'),
  g('maxmemory', 'redis_config_maxmemory', 'Config maxmemory (0: no limit); the same value as redis_memory_max_bytes.'),
  g('total_system_memory', 'redis_total_system_memory_bytes', 'Memory of the host Redis runs on (redis_exporter serves it with -include-system-metrics; the Redis mixin\'s RedisOutOfMemory alert divides by it).'),
  g('mem_fragmentation_ratio', 'redis_mem_fragmentation_ratio', 'RSS divided by allocated memory.'),
  g('mem_fragmentation_bytes', 'redis_mem_fragmentation_bytes', 'RSS minus allocated memory.'),
  g('mem_not_counted_for_evict', 'redis_mem_not_counted_for_eviction_bytes', 'Memory not counted against maxmemory (replication and AOF buffers).'),
  g('mem_clients_normal', 'redis_mem_clients_normal', 'Memory of normal clients\' buffers, bytes.'),
  g('mem_clients_slaves', 'redis_mem_clients_slaves', 'Memory of replicas\' client buffers, bytes.'),
  g('allocator_allocated', 'redis_allocator_allocated_bytes', 'Bytes allocated by the allocator.'),
  g('allocator_active', 'redis_allocator_active_bytes', 'Bytes in the allocator\'s active pages.'),
  g('allocator_resident', 'redis_allocator_resident_bytes', 'Bytes resident in the allocator.'),
  g('allocator_frag_ratio', 'redis_allocator_frag_ratio', 'Allocator fragmentation: active divided by allocated.'),
  g('allocator_frag_bytes', 'redis_allocator_frag_bytes', 'Allocator fragmentation: active minus allocated.'),
  g('allocator_rss_ratio', 'redis_allocator_rss_ratio', 'Resident divided by active allocator memory.'),
  g('allocator_rss_bytes', 'redis_allocator_rss_bytes', 'Resident minus active allocator memory.'),
  g('lazyfree_pending_objects', 'redis_lazyfree_pending_objects', 'Objects waiting to be freed in the background.'),
  g('number_of_cached_scripts', 'redis_number_of_cached_scripts', 'Cached Lua scripts.'),
  g('active_defrag_running', 'redis_active_defrag_running', 'Whether active defragmentation runs (its CPU share in percent).'),
  // Persistence
  g('loading', 'redis_loading_dump_file', 'Whether a dump file is being loaded (1) or not (0).'),
  g('rdb_changes_since_last_save', 'redis_rdb_changes_since_last_save', 'Writes since the last RDB save.'),
  g('rdb_bgsave_in_progress', 'redis_rdb_bgsave_in_progress', 'Whether an RDB save runs (1) or not (0).'),
  g('rdb_last_save_time', 'redis_rdb_last_save_timestamp_seconds', 'Last successful RDB save, seconds since epoch.'),
  ok('rdb_last_bgsave_status', 'redis_rdb_last_bgsave_status', 'Whether the last background save succeeded (1) or failed (0).'),
  g('rdb_last_bgsave_time_sec', 'redis_rdb_last_bgsave_duration_sec', 'Duration of the last RDB save, seconds (-1: none yet).'),
  g('rdb_current_bgsave_time_sec', 'redis_rdb_current_bgsave_duration_sec', 'Duration of the running RDB save, seconds (-1: none).'),
  g('rdb_last_cow_size', 'redis_rdb_last_cow_size_bytes', 'Copy-on-write memory of the last RDB save.'),
  g('aof_enabled', 'redis_aof_enabled', 'Whether AOF is on (1) or off (0).'),
  g('aof_rewrite_in_progress', 'redis_aof_rewrite_in_progress', 'Whether an AOF rewrite runs (1) or not (0).'),
  g('aof_rewrite_scheduled', 'redis_aof_rewrite_scheduled', 'Whether an AOF rewrite waits for an RDB save (1) or not (0).'),
  g('aof_last_rewrite_time_sec', 'redis_aof_last_rewrite_duration_sec', 'Duration of the last AOF rewrite, seconds (-1: none yet).'),
  g('aof_current_rewrite_time_sec', 'redis_aof_current_rewrite_duration_sec', 'Duration of the running AOF rewrite, seconds (-1: none).'),
  ok('aof_last_bgrewrite_status', 'redis_aof_last_bgrewrite_status', 'Whether the last AOF rewrite succeeded (1) or failed (0).'),
  ok('aof_last_write_status', 'redis_aof_last_write_status', 'Whether the last AOF write succeeded (1) or failed (0).'),
  g('aof_last_cow_size', 'redis_aof_last_cow_size_bytes', 'Copy-on-write memory of the last AOF rewrite.'),
  g('module_fork_in_progress', 'redis_module_fork_in_progress', 'Whether a module fork runs (1) or not (0).'),
  g('module_fork_last_cow_size', 'redis_module_fork_last_cow_size', 'Copy-on-write memory of the last module fork, bytes.'),
  // Stats
  c('total_connections_received', 'redis_connections_received_total', 'Connections accepted.'),
  c('total_commands_processed', 'redis_commands_processed_total', 'Commands processed.'),
  // Not a redis_exporter metric (1.45 has none for it); "_per_sec" would be an abbreviated
  // unit to promtool, so the name spells it out.
  g('instantaneous_ops_per_sec', 'redis_instantaneous_ops_per_second', 'Commands per second, as Redis samples it over its last 1.6 s.'),
  c('total_net_input_bytes', 'redis_net_input_bytes_total', 'Bytes read from the network (clients and replication).'),
  c('total_net_output_bytes', 'redis_net_output_bytes_total', 'Bytes written to the network (clients and replication).'),
  c('rejected_connections', 'redis_rejected_connections_total', 'Connections rejected because of maxclients.'),
  g('sync_full', 'redis_replica_resyncs_full', 'Full resynchronisations with replicas.'),
  g('sync_partial_ok', 'redis_replica_partial_resync_accepted', 'Partial resynchronisation requests accepted.'),
  g('sync_partial_err', 'redis_replica_partial_resync_denied', 'Partial resynchronisation requests denied.'),
  c('expired_keys', 'redis_expired_keys_total', 'Keys expired.'),
  g('expired_stale_perc', 'redis_expired_stale_percentage', 'Estimated percentage of keys already expired but not yet removed.'),
  g('expired_time_cap_reached_count', 'redis_expired_time_cap_reached_total', 'Times the active expiry cycle stopped at its time limit.'),
  c('evicted_keys', 'redis_evicted_keys_total', 'Keys evicted because of maxmemory.'),
  c('keyspace_hits', 'redis_keyspace_hits_total', 'Successful key lookups.'),
  c('keyspace_misses', 'redis_keyspace_misses_total', 'Failed key lookups.'),
  g('pubsub_channels', 'redis_pubsub_channels', 'Pub/sub channels with subscribers.'),
  g('pubsub_patterns', 'redis_pubsub_patterns', 'Pub/sub patterns with subscribers.'),
  g('latest_fork_usec', 'redis_latest_fork_seconds', 'Duration of the latest fork.', 1e-6),
  g('migrate_cached_sockets', 'redis_migrate_cached_sockets_total', 'Sockets open for MIGRATE.'),
  g('slave_expires_tracked_keys', 'redis_slave_expires_tracked_keys', 'Keys tracked for expiry on a writable replica.'),
  g('active_defrag_hits', 'redis_defrag_hits', 'Value reallocations done by active defragmentation.'),
  g('active_defrag_misses', 'redis_defrag_misses', 'Value reallocations skipped by active defragmentation.'),
  g('active_defrag_key_hits', 'redis_defrag_key_hits', 'Keys actively defragmented.'),
  g('active_defrag_key_misses', 'redis_defrag_key_misses', 'Keys skipped by active defragmentation.'),
  g('tracking_total_keys', 'redis_tracking_total_keys', 'Keys tracked for client-side caching.'),
  g('tracking_total_items', 'redis_tracking_total_items', 'Items (key and client pairs) tracked for client-side caching.'),
  g('tracking_total_prefixes', 'redis_tracking_total_prefixes', 'Prefixes tracked for client-side caching (broadcast mode).'),
  c('unexpected_error_replies', 'redis_unexpected_error_replies', 'Unexpected error replies (AOF load or replication errors).'),
  c('total_error_replies', 'redis_total_error_replies', 'Error replies sent to clients.'),
  c('dump_payload_sanitizations', 'redis_dump_payload_sanitizations', 'Deep integrity checks of DUMP payloads.'),
  c('total_reads_processed', 'redis_total_reads_processed', 'Read events processed.'),
  c('total_writes_processed', 'redis_total_writes_processed', 'Write events processed.'),
  c('io_threaded_reads_processed', 'redis_io_threaded_reads_processed', 'Read events processed by I/O threads.'),
  c('io_threaded_writes_processed', 'redis_io_threaded_writes_processed', 'Write events processed by I/O threads.'),
  // Replication
  g('connected_slaves', 'redis_connected_slaves', 'Replicas connected to this server.'),
  g('master_repl_offset', 'redis_master_repl_offset', 'Replication offset of this server, bytes.'),
  g('second_repl_offset', 'redis_second_repl_offset', 'Offset up to which replication ids are accepted after a failover, bytes (-1: none).'),
  g('repl_backlog_active', 'redis_repl_backlog_is_active', 'Whether the replication backlog is active (1) or not (0).'),
  g('repl_backlog_size', 'redis_replication_backlog_bytes', 'Size of the replication backlog.'),
  g('repl_backlog_first_byte_offset', 'redis_repl_backlog_first_byte_offset', 'Master offset of the backlog\'s first byte.'),
  g('repl_backlog_histlen', 'redis_repl_backlog_history_bytes', 'Bytes of data in the replication backlog.'),
  g('slave_priority', 'redis_slave_priority', 'Priority of this replica for promotion (replicas only).'),
  // CPU
  c('used_cpu_sys', 'redis_cpu_sys_seconds_total', 'System CPU time of the Redis process.'),
  c('used_cpu_user', 'redis_cpu_user_seconds_total', 'User CPU time of the Redis process.'),
  c('used_cpu_sys_children', 'redis_cpu_sys_children_seconds_total', 'System CPU time of background children.'),
  c('used_cpu_user_children', 'redis_cpu_user_children_seconds_total', 'User CPU time of background children.'),
  c('used_cpu_sys_main_thread', 'redis_cpu_sys_main_thread_seconds_total', 'System CPU time of the main thread.'),
  c('used_cpu_user_main_thread', 'redis_cpu_user_main_thread_seconds_total', 'User CPU time of the main thread.'),
  // Cluster
  g('cluster_enabled', 'redis_cluster_enabled', 'Whether cluster mode is on (1) or off (0).'),
];

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

/** "keys=3,expires=1,avg_ttl=5000" → { keys: '3', expires: '1', avg_ttl: '5000' } */
export function parseFields(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of value.split(',')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

export interface CommandStat {
  cmd: string;
  calls: number;
  seconds: number;
  rejected: number;
  failed: number;
}

/**
 * "cmdstat_get" → "get"; "cmdstat_config|get" stays "config|get", as redis_exporter labels it.
 * Values: calls, usec (total), rejected_calls and failed_calls (Redis 6.2+).
 */
export function commandStat(key: string, value: string): CommandStat | undefined {
  if (!key.startsWith('cmdstat_')) return undefined;
  const f = parseFields(value);
  const calls = Number(f['calls']);
  if (!Number.isFinite(calls)) return undefined;
  return {
    cmd: key.slice('cmdstat_'.length),
    calls,
    seconds: (Number(f['usec']) || 0) / 1e6,
    rejected: Number(f['rejected_calls']) || 0,
    failed: Number(f['failed_calls']) || 0,
  };
}

export interface ReplicaLine {
  ip: string;
  port: string;
  state: string;
  offset: number;
  lag: number;
}

/** A primary's "slave0:ip=127.0.0.1,port=6380,state=online,offset=2948,lag=0". */
export function replicaLine(key: string, value: string): ReplicaLine | undefined {
  if (!/^slave\d+$/.test(key)) return undefined;
  const f = parseFields(value);
  return { ip: f['ip'] ?? '', port: f['port'] ?? '', state: f['state'] ?? '', offset: Number(f['offset']) || 0, lag: Number(f['lag']) || 0 };
}
