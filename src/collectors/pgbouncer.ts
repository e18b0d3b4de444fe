import * as sql from '../sql/pgbouncer.ts';
import type { PgTarget } from '../targets/postgres.ts';
import type { Family, MetricFactory } from '../metrics/registry.ts';
import { num, str } from '../util/values.ts';
import { defineCollector, type LabelValues } from './collector.ts';
import { MAX_ERRMSGS, OTHER, PgBouncerLogErrors } from './pgbouncer-log.ts';

// PgBouncer, from its admin console. Names and labels follow pgbouncer_exporter.

const POOL = ['database', 'user'];
const DB = ['name', 'host', 'port', 'database', 'force_user', 'pool_mode'];

// SHOW LISTS rows pgbouncer_exporter turns into gauges (row name → metric), in its words.
const LISTS: Record<string, [string, string]> = {
  databases: ['pgbouncer_databases', 'Count of databases.'],
  users: ['pgbouncer_users', 'Count of users.'],
  pools: ['pgbouncer_pools', 'Count of pools.'],
  free_clients: ['pgbouncer_free_clients', 'Count of free clients.'],
  used_clients: ['pgbouncer_used_clients', 'Count of used clients.'],
  login_clients: ['pgbouncer_login_clients', 'Count of clients in login state.'],
  free_servers: ['pgbouncer_free_servers', 'Count of free servers.'],
  used_servers: ['pgbouncer_used_servers', 'Count of used servers.'],
  dns_names: ['pgbouncer_cached_dns_names', 'Count of DNS names in the cache.'],
  dns_zones: ['pgbouncer_cached_dns_zones', 'Count of DNS zones in the cache.'],
  dns_queries: ['pgbouncer_in_flight_dns_queries', 'Count of in-flight DNS queries.'],
};

function declare(f: MetricFactory) {
  const g = f.gauge.bind(f);
  const c = f.counter.bind(f);
  return {
    up: g('pgbouncer_up', 'Whether the PgBouncer admin console answered (1) or not (0).'),
    version: g('pgbouncer_version_info', 'The PgBouncer version (value 1).', ['version']),
    lists: new Map(Object.entries(LISTS).map(([row, [name, help]]) => [row, g(name, help)])),
    clientActiveCancel: g('pgbouncer_pools_client_active_cancel_connections', 'Client connections that forwarded a query cancellation and wait for the server\'s answer.', POOL),
    clientWaitingCancel: g('pgbouncer_pools_client_waiting_cancel_connections', 'Client connections that have not forwarded their query cancellation yet.', POOL),
    serverActiveCancel: g('pgbouncer_pools_server_active_cancel_connections', 'Server connections forwarding a cancel request.', POOL),
    serverBeingCanceled: g('pgbouncer_pools_server_being_canceled_connections', 'Server connections waiting for in-flight cancel requests before they can go idle.', POOL),
    clientActive: g('pgbouncer_pools_client_active_connections', 'Client connections linked to a server connection.', POOL),
    clientWaiting: g('pgbouncer_pools_client_waiting_connections', 'Client connections waiting for a server connection.', POOL),
    serverActive: g('pgbouncer_pools_server_active_connections', 'Server connections linked to a client.', POOL),
    serverIdle: g('pgbouncer_pools_server_idle_connections', 'Server connections idle and ready for a client.', POOL),
    serverUsed: g('pgbouncer_pools_server_used_connections', 'Server connections idle longer than server_check_delay.', POOL),
    serverTesting: g('pgbouncer_pools_server_testing_connections', 'Server connections running a reset or check query.', POOL),
    serverLogin: g('pgbouncer_pools_server_login_connections', 'Server connections logging in.', POOL),
    maxWait: g('pgbouncer_pools_client_maxwait_seconds', 'How long the oldest waiting client has waited.', POOL),
    poolSize: g('pgbouncer_databases_pool_size', 'Maximum server connections for this database\'s pools.', DB),
    reservePool: g('pgbouncer_databases_reserve_pool', 'Extra server connections allowed for this database.', DB),
    maxConns: g('pgbouncer_databases_max_connections', 'Maximum server connections for this database (0: unlimited).', DB),
    currentConns: g('pgbouncer_databases_current_connections', 'Current server connections for this database.', DB),
    paused: g('pgbouncer_databases_paused', 'Whether this database is paused (1) or not (0).', DB),
    disabled: g('pgbouncer_databases_disabled', 'Whether this database is disabled (1) or not (0).', DB),
    maxClientConn: g('pgbouncer_config_max_client_connections', 'Config max_client_conn.'),
    maxUserConn: g('pgbouncer_config_max_user_connections', 'Config max_user_connections (0: unlimited).'),
    defaultPoolSize: g('pgbouncer_config_default_pool_size', 'Config default_pool_size.'),
    queries: c('pgbouncer_stats_queries_pooled_total', 'SQL queries pooled.', ['database']),
    queryTime: c('pgbouncer_stats_queries_duration_seconds_total', 'Time spent running queries.', ['database']),
    xacts: c('pgbouncer_stats_sql_transactions_pooled_total', 'SQL transactions pooled.', ['database']),
    xactTime: c('pgbouncer_stats_server_in_transaction_seconds_total', 'Time server connections spent in a transaction.', ['database']),
    waitTime: c('pgbouncer_stats_client_wait_seconds_total', 'Time clients spent waiting for a server connection.', ['database']),
    received: c('pgbouncer_stats_received_bytes_total', 'Bytes received from clients.', ['database']),
    sent: c('pgbouncer_stats_sent_bytes_total', 'Bytes sent to clients.', ['database']),
    errors: c(
      'pgbouncer_errors_count',
      `Errors in PgBouncer's log_file since housekeeper started following it (only with log_file): WARNING/ERROR/FATAL lines, a pooler error once by the text the client got. errmsg is the message with quoted names, addresses, numbers and a trailing name after a colon replaced; at most ${MAX_ERRMSGS} distinct per target, later ones count as errmsg="${OTHER}".`,
      ['errmsg'],
    ),
    logReadable: g('pgbouncer_log_readable', "Whether PgBouncer's log_file could be read at the last scrape (1) or not (0); only with log_file."),
  };
}
type Metrics = ReturnType<typeof declare>;

/** The console's microsecond counters in seconds (undefined stays undefined). */
const micros = (v: unknown): number | undefined => {
  const n = num(v);
  return n === undefined ? undefined : n / 1e6;
};

// Per target object (one per service instance), so two services in one process (tests) each
// follow the file from their own start.
const logs = new WeakMap<PgTarget, PgBouncerLogErrors>();

export default defineCollector<PgTarget, Metrics>({
  name: 'pgbouncer',
  enabledByDefault: true,
  targets: (t) => t.pgbouncer,
  metrics: declare,
  up: (m) => m.up,
  async collect(ctx, m, config) {
    // A value the console did not give (NULL, not a number) leaves its series out, not a 0.
    const set = (family: Family, labels: LabelValues, v: number | undefined): void => {
      if (v !== undefined) ctx.set(family, labels, v);
    };
    const logFile = config.pgbouncer.find((t) => t.name === ctx.target.name)?.logFile;
    let errors = logs.get(ctx.target);
    if (logFile !== undefined && errors === undefined) {
      errors = new PgBouncerLogErrors(ctx.target.name, logFile);
      logs.set(ctx.target, errors);
    }
    // The log is read alongside the admin console; it never throws, an unreadable file is a gauge.
    const logRead = errors?.update(ctx.signal, ctx.log);
    await ctx.target.use(ctx.signal, async (client) => {
      for (const r of (await client.query<Record<string, unknown>>(sql.SHOW_POOLS)).rows) {
        const l = { database: str(r['database']), user: str(r['user']) };
        set(m.clientActive, l, num(r['cl_active']));
        set(m.clientWaiting, l, num(r['cl_waiting']));
        set(m.serverActive, l, num(r['sv_active']));
        set(m.serverIdle, l, num(r['sv_idle']));
        set(m.serverUsed, l, num(r['sv_used']));
        set(m.serverTesting, l, num(r['sv_tested']));
        set(m.serverLogin, l, num(r['sv_login']));
        // Columns of PgBouncer 1.18+; absent on older servers, and then not reported.
        if ('cl_active_cancel_req' in r) set(m.clientActiveCancel, l, num(r['cl_active_cancel_req']));
        if ('cl_waiting_cancel_req' in r) set(m.clientWaitingCancel, l, num(r['cl_waiting_cancel_req']));
        if ('sv_active_cancel' in r) set(m.serverActiveCancel, l, num(r['sv_active_cancel']));
        if ('sv_being_canceled' in r) set(m.serverBeingCanceled, l, num(r['sv_being_canceled']));
        const wait = num(r['maxwait']);
        set(m.maxWait, l, wait === undefined ? undefined : wait + (micros(r['maxwait_us']) ?? 0));
      }
      for (const r of (await client.query<Record<string, unknown>>(sql.SHOW_DATABASES)).rows) {
        const l = {
          name: str(r['name']),
          host: str(r['host']),
          port: str(r['port']),
          database: str(r['database']),
          force_user: str(r['force_user']),
          pool_mode: str(r['pool_mode']),
        };
        set(m.poolSize, l, num(r['pool_size']));
        set(m.reservePool, l, num(r['reserve_pool']));
        set(m.maxConns, l, num(r['max_connections']));
        set(m.currentConns, l, num(r['current_connections']));
        set(m.paused, l, num(r['paused']));
        set(m.disabled, l, num(r['disabled']));
      }
      for (const r of (await client.query<Record<string, unknown>>(sql.SHOW_LISTS)).rows) {
        const family = m.lists.get(str(r['list']));
        if (family) set(family, {}, num(r['items']));
      }
      for (const r of (await client.query<Record<string, unknown>>(sql.SHOW_VERSION)).rows) set(m.version, { version: str(r['version']) }, 1);
      for (const r of (await client.query<Record<string, unknown>>(sql.SHOW_CONFIG)).rows) {
        const key = r['key'];
        if (key === 'max_client_conn') set(m.maxClientConn, {}, num(r['value']));
        else if (key === 'max_user_connections') set(m.maxUserConn, {}, num(r['value']));
        else if (key === 'default_pool_size') set(m.defaultPoolSize, {}, num(r['value']));
      }
      for (const r of (await client.query<Record<string, unknown>>(sql.SHOW_STATS)).rows) {
        const l = { database: str(r['database']) };
        set(m.queries, l, num(r['total_query_count']));
        set(m.queryTime, l, micros(r['total_query_time']));
        set(m.xacts, l, num(r['total_xact_count']));
        set(m.xactTime, l, micros(r['total_xact_time']));
        set(m.waitTime, l, micros(r['total_wait_time']));
        set(m.received, l, num(r['total_received']));
        set(m.sent, l, num(r['total_sent']));
      }
    });
    if (errors !== undefined) {
      await logRead;
      set(m.logReadable, {}, errors.readable ? 1 : 0);
      for (const [errmsg, n] of errors.counts) set(m.errors, { errmsg }, n);
    }
  },
  async close(targets) {
    await Promise.allSettled(targets.map((t) => logs.get(t)?.close()));
    for (const t of targets) logs.delete(t);
  },
});
