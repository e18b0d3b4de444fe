import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../config.ts';
import { DAY, HOUR, runbook } from '../runbook.ts';

// The runbook's morning check, evaluated over one fresh collection. Each check names what it
// looked at, its value, the runbook's threshold, and a status a person reads at a glance.

/** skip: could not be checked from here (said why); it does not turn the check red. */
export type Status = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  check: string;
  target: string;
  status: Status;
  value: string;
  threshold: string;
}

type Families = Map<string, MetricObjectWithValues<MetricValue<string>>>;

export class Samples {
  private readonly families: Families;
  constructor(metrics: Array<MetricObjectWithValues<MetricValue<string>>>) {
    this.families = new Map(metrics.map((m) => [m.name, m]));
  }
  all(name: string, labels: Record<string, string> = {}): Array<{ labels: Record<string, string | number>; value: number }> {
    const f = this.families.get(name);
    if (!f) return [];
    return f.values
      .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
      .map((v) => ({ labels: v.labels as Record<string, string | number>, value: v.value }));
  }
  one(name: string, labels: Record<string, string> = {}): number | undefined {
    return this.all(name, labels)[0]?.value;
  }
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.all(name, labels).reduce((a, s) => a + s.value, 0);
  }
  targets(name: string): string[] {
    return [...new Set(this.all(name).map((s) => String(s.labels['target'])))];
  }
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
/** A threshold as the RUNBOOK column prints it: 0.8 → 80%. */
const pct0 = (x: number): string => `${Math.round(x * 100)}%`;

const days = (seconds: number): string => `${(seconds / DAY).toFixed(1)} d`;

/** Over the warn level: warn; over the fail level: fail. */
function level(v: number, warnAt: number, failAt: number): Status {
  return v >= failAt ? 'fail' : v >= warnAt ? 'warn' : 'ok';
}

/** Why a collection failed, as the collector runner recorded it (secret-free). */
export interface CollectionFailure {
  collector: string;
  target: string;
  reason: string;
}

/** What every source's checks read, and where they write. */
interface Ctx {
  s: Samples;
  config: Config;
  nowS: number;
  failures: readonly CollectionFailure[];
  push(check: string, target: string, status: Status, value: string, threshold: string): void;
}

/** Postgres: reachable, connections, long queries, lag, locks, retention per entry. */
function checkPostgres(c: Ctx): void {
  const { s, config, push } = c;
  for (const t of config.postgres.map((p) => p.name)) {
    const up = s.one('pg_up', { target: t }) === 1;
    push('postgres reachable', t, up ? 'ok' : 'fail', up ? 'up' : 'down', 'up');
    if (!up) continue;
    const max = s.one('pg_settings_max_connections', { target: t }) ?? 0;
    const reserved = (s.one('pg_settings_superuser_reserved_connections', { target: t }) ?? 0) + (s.one('pg_settings_reserved_connections', { target: t }) ?? 0);
    const used = s.sum('pg_stat_activity_count', { target: t });
    const ratio = max - reserved > 0 ? used / (max - reserved) : 0;
    push('postgres connections', t, level(ratio, runbook.connections.warn, runbook.connections.crit), `${used}/${max - reserved} (${pct(ratio)})`, `< ${pct0(runbook.connections.warn)} of usable`);
    const long = s.sum('pg_long_running_queries', { target: t });
    push('long-running queries', t, long > 0 ? 'warn' : 'ok', String(long), `none over ${config.collectors.postgres.longQueryThresholdMs / 1000}s`);
    if (s.one('pg_replication_is_replica', { target: t }) === 1) {
      const lag = s.one('pg_replication_lag_seconds', { target: t }) ?? 0;
      push('replication lag', t, level(lag, runbook.replicationLagSeconds.warn, runbook.replicationLagSeconds.crit), `${lag.toFixed(2)}s`, `< ${runbook.replicationLagSeconds.warn}s`);
    }
    const blocked = s.sum('pg_blocked_sessions', { target: t });
    push('sessions blocked on locks', t, blocked > 0 ? 'warn' : 'ok', String(blocked), 'none');
    // The runbook's retention (chat logs 90 days, conversations 30): one row per configured
    // cleanup or archive entry on this server, by its oldest row.
    for (const e of s.all('pg_retention_check_success', { target: t })) {
      const l = { target: t, entry: String(e.labels['entry']), kind: String(e.labels['kind']) };
      const what = `retention ${l.kind} ${l.entry} (${String(e.labels['table'])})`;
      if (e.value !== 1) {
        push(what, t, 'warn', 'cannot be checked: see the log (table or column missing, or not a time)', 'oldest row checked');
        continue;
      }
      const age = s.one('pg_retention_oldest_row_age_seconds', l) ?? 0;
      const keep = s.one('pg_retention_max_age_seconds', l) ?? 0;
      push(what, t, age > keep + runbook.retentionGraceSeconds ? 'warn' : 'ok', `oldest ${days(age)}`, `< ${days(keep)} + ${days(runbook.retentionGraceSeconds)}`);
    }
  }
}

/** PgBouncer: reachable, clients waiting. */
function checkPgbouncer(c: Ctx): void {
  const { s, config, push } = c;
  for (const t of config.pgbouncer.map((p) => p.name)) {
    const up = s.one('pgbouncer_up', { target: t }) === 1;
    push('pgbouncer reachable', t, up ? 'ok' : 'fail', up ? 'up' : 'down', 'up');
    if (!up) continue;
    const waiting = s.sum('pgbouncer_pools_client_waiting_connections', { target: t });
    push('pgbouncer clients waiting', t, waiting > 0 ? 'warn' : 'ok', String(waiting), 'none');
  }
}

/** Redis: reachable, memory against maxmemory, hit ratio since start. */
function checkRedis(c: Ctx): void {
  const { s, config, push } = c;
  for (const t of config.redis.map((r) => r.name)) {
    const up = s.one('redis_up', { target: t }) === 1;
    push('redis reachable', t, up ? 'ok' : 'fail', up ? 'up' : 'down', 'up');
    if (!up) continue;
    const used = s.one('redis_memory_used_bytes', { target: t }) ?? 0;
    const max = s.one('redis_memory_max_bytes', { target: t }) ?? 0;
    if (max > 0) push('redis memory', t, level(used / max, runbook.redisMemory.warn, runbook.redisMemory.crit), pct(used / max), `< ${pct0(runbook.redisMemory.warn)} of maxmemory`);
    const hits = s.one('redis_keyspace_hits_total', { target: t }) ?? 0;
    const misses = s.one('redis_keyspace_misses_total', { target: t }) ?? 0;
    if (hits + misses > 0) {
      const ratio = hits / (hits + misses);
      push('redis hit ratio', t, ratio < runbook.hitRatio.warn ? 'warn' : 'ok', pct(ratio), `> ${pct0(runbook.hitRatio.warn)} (since start)`);
    }
  }
}

/** FAISS: loadable, recall against its floor, vectors missing. */
function checkFaiss(c: Ctx): void {
  const { s, config, push } = c;
  for (const f of config.faiss) {
    const t = f.name;
    if (s.one('faiss_index_check_timestamp_seconds', { target: t }) === undefined) {
      push('vector index', t, 'skip', 'not checked yet (the first check runs in the background)', 'loadable');
      continue;
    }
    const loadable = s.one('faiss_index_loadable', { target: t }) === 1;
    push('vector index loadable', t, loadable ? 'ok' : 'fail', loadable ? 'yes' : 'no', 'loads as a FAISS index');
    if (!loadable) continue;
    const recall = s.one('faiss_index_recall_at_10', { target: t });
    if (recall !== undefined) push('vector index recall@10', t, recall < f.recallFloor ? 'warn' : 'ok', recall.toFixed(3), `>= ${f.recallFloor}`);
    const rows = s.one('faiss_index_source_rows', { target: t });
    const gap = s.one('faiss_index_source_gap', { target: t });
    if (rows !== undefined && gap !== undefined && rows > 0) push('vectors missing from index', t, gap / rows > runbook.faissMissingRatio ? 'warn' : 'ok', `${gap} of ${rows}`, `<= ${pct0(runbook.faissMissingRatio)} of source rows`);
  }
}

/** Backups: the directory, each kind's newest backup and its verification, the restore test. */
function checkBackups(c: Ctx): void {
  const { s, config, nowS, push } = c;
  if (config.backups) {
    const readable = s.one('backup_directory_readable') === 1;
    push('backup directory', 'backups', readable ? 'ok' : 'fail', readable ? 'readable' : 'unreadable', 'readable');
    if (readable) {
      for (const kind of Object.keys(config.backups.kinds)) {
        const newest = Math.max(0, ...s.all('backup_last_timestamp_seconds', { kind }).map((x) => x.value));
        const age = newest > 0 ? nowS - newest : Number.POSITIVE_INFINITY;
        const { warn, crit } = runbook.backupAgeSeconds;
        push('last backup age', kind, newest === 0 ? 'fail' : level(age, warn, crit), newest === 0 ? 'none' : `${(age / HOUR).toFixed(1)}h`, `daily (< ${warn / HOUR}h)`);
        // Only housekeeper backups (with a manifest) are verified; say what is known now
        // rather than wait: none to verify, not verified yet, or the verdict.
        const verifiedAt = s.one('backup_last_verified_timestamp_seconds', { kind });
        const ours = s.one('backup_last_timestamp_seconds', { kind, source: 'housekeeper' }) ?? 0;
        const how = 'checksum (+ pg_restore --list)';
        if (verifiedAt === undefined) continue;
        if (ours === 0) push('last backup verified', kind, 'skip', 'no housekeeper backup (foreign ones are not verified)', how);
        else if (verifiedAt === 0) push('last backup verified', kind, 'skip', 'not verified yet (verification runs in the background)', how);
        else {
          const ok = s.one('backup_last_verified_success', { kind }) === 1;
          push('last backup verified', kind, ok ? 'ok' : 'fail', ok ? 'yes' : 'no', how);
        }
      }
      const restore = s.one('backup_last_restore_test_timestamp_seconds', { kind: 'database' });
      if (config.backups.kinds.database) {
        const age = restore ? nowS - restore : Number.POSITIVE_INFINITY;
        push('restore test', 'database', !restore ? 'warn' : age > runbook.restoreTestAgeSeconds.warn ? 'warn' : 'ok', restore ? `${(age / DAY).toFixed(1)} days ago` : 'never', 'weekly (Fridays)');
      }
    }
  }
}

/** Elasticsearch: reachable, health, indices past retention, snapshot age. */
function checkElasticsearch(c: Ctx): void {
  const { s, config, nowS, push } = c;
  for (const e of config.elasticsearch) {
    const t = e.name;
    const up = s.one('elasticsearch_cluster_health_up', { target: t }) === 1;
    push('elasticsearch reachable', t, up ? 'ok' : 'fail', up ? 'up' : 'down', 'up');
    if (!up) continue;
    const color = s.all('elasticsearch_cluster_health_status', { target: t }).find((x) => x.value === 1)?.labels['color'];
    push('elasticsearch health', t, color === 'green' ? 'ok' : color === 'yellow' ? 'warn' : 'fail', String(color ?? 'unknown'), 'green');
    // Without index patterns no index is looked at: no row, rather than a green "0" that was never checked.
    if (e.indexPatterns.length > 0) {
      const past = s.sum('elasticsearch_index_pattern_indices_past_retention', { target: t });
      push('indices past retention', t, past > 0 ? 'warn' : 'ok', String(past), `none older than ${e.retentionMs / 86_400_000} days`);
    }
    // Likewise no snapshot row without a repository to look in.
    if (e.snapshotRepository !== undefined) {
      const repository = e.snapshotRepository;
      const warnH = runbook.esSnapshotAgeSeconds.warn / HOUR;
      const threshold = `daily (< ${warnH}h), repository ${repository}`;
      // Start time of the latest SUCCESS or PARTIAL snapshot; 0: none among the newest.
      const latest = s.one('elasticsearch_snapshot_stats_latest_snapshot_timestamp_seconds', { target: t, repository });
      if (latest === undefined) {
        // Not expected while the target is up (a failed snapshot query makes it down); said, not guessed.
        push('elasticsearch snapshot age', t, 'skip', 'not collected', threshold);
      } else if (latest === 0) {
        // The alert fires on 0 too, at its one severity (warning): warn, not fail.
        push('elasticsearch snapshot age', t, 'warn', 'none successful', threshold);
      } else {
        const age = Math.max(0, nowS - latest);
        push('elasticsearch snapshot age', t, age > runbook.esSnapshotAgeSeconds.warn ? 'warn' : 'ok', `${(age / HOUR).toFixed(1)}h`, threshold);
      }
    }
  }
}

/** Certificates: the probe, days until the chain expires. */
function checkCertificates(c: Ctx): void {
  const { s, config, nowS, push } = c;
  for (const c of config.certificates) {
    const t = c.name;
    if (c.kind === 'endpoint' && s.one('ssl_probe_success', { target: t }) !== 1) {
      push('certificate probe', t, 'fail', 'failed', 'TLS handshake');
      continue;
    }
    const notAfter = c.kind === 'endpoint' ? s.one('ssl_chain_earliest_not_after', { target: t }) : Math.min(...s.all('ssl_file_cert_not_after', { target: t }).map((x) => x.value));
    if (notAfter === undefined || !Number.isFinite(notAfter)) continue;
    const left = (notAfter - nowS) / DAY;
    const { warn, crit } = runbook.certDays;
    push('certificate expiry', t, left < crit ? 'fail' : left < warn ? 'warn' : 'ok', `${left.toFixed(1)} days`, `> ${warn} days`);
  }
}

/** Failed collections, with the reason the runner recorded. */
function checkCollectors(c: Ctx): void {
  const { s, failures, push } = c;
  for (const r of s.all('housekeeper_collector_success')) {
    if (r.value !== 1) {
      // Why, when the runner knows: "down" alone does not say a snapshot repository is missing.
      const why = failures.find((f) => f.collector === r.labels['collector'] && f.target === r.labels['target'])?.reason;
      push('collector', `${r.labels['collector']}/${r.labels['target']}`, 'fail', why ? `failed: ${why}` : 'failed', 'succeeds');
    }
  }
}

export function evaluate(s: Samples, config: Config, nowS = Date.now() / 1000, failures: readonly CollectionFailure[] = []): CheckResult[] {
  const out: CheckResult[] = [];
  const push = (check: string, target: string, status: Status, value: string, threshold: string): void => {
    out.push({ check, target, status, value, threshold });
  };
  const ctx: Ctx = { s, config, nowS, failures, push };
  checkPostgres(ctx);
  checkPgbouncer(ctx);
  checkRedis(ctx);
  checkFaiss(ctx);
  checkBackups(ctx);
  checkElasticsearch(ctx);
  checkCertificates(ctx);
  checkCollectors(ctx);
  return out;
}

/** A table a person reads in ten seconds: failures first. */
export function renderTable(results: CheckResult[]): string {
  const order: Record<Status, number> = { fail: 0, warn: 1, skip: 2, ok: 3 };
  const rows = [...results].sort((a, b) => order[a.status] - order[b.status]);
  const head = ['STATUS', 'CHECK', 'TARGET', 'VALUE', 'RUNBOOK'];
  const cells = rows.map((r) => [r.status.toUpperCase(), r.check, r.target, r.value, r.threshold]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]): string => c.map((x, i) => x.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const fails = results.filter((r) => r.status === 'fail').length;
  const warns = results.filter((r) => r.status === 'warn').length;
  const skips = results.filter((r) => r.status === 'skip').length;
  const summary = fails + warns === 0 ? `all ${results.length - skips} checks green${skips ? ` (${skips} not checked)` : ''}` : `${fails} failing, ${warns} warning, ${results.length - fails - warns - skips} ok`;
  return [line(head), ...cells.map(line), '', summary].join('\n');
}
