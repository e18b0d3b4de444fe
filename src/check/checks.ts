import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../config.ts';

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

/** Over the warn level: warn; over the fail level: fail. */
function level(v: number, warnAt: number, failAt: number): Status {
  return v >= failAt ? 'fail' : v >= warnAt ? 'warn' : 'ok';
}

export function evaluate(s: Samples, config: Config, nowS = Date.now() / 1000): CheckResult[] {
  const out: CheckResult[] = [];
  const push = (check: string, target: string, status: Status, value: string, threshold: string): void => {
    out.push({ check, target, status, value, threshold });
  };
  for (const t of config.postgres.map((p) => p.name)) {
    const up = s.one('pg_up', { target: t }) === 1;
    push('postgres reachable', t, up ? 'ok' : 'fail', up ? 'up' : 'down', 'up');
    if (!up) continue;
    const max = s.one('pg_settings_max_connections', { target: t }) ?? 0;
    const reserved = (s.one('pg_settings_superuser_reserved_connections', { target: t }) ?? 0) + (s.one('pg_settings_reserved_connections', { target: t }) ?? 0);
    const used = s.sum('pg_stat_activity_count', { target: t });
    const ratio = max - reserved > 0 ? used / (max - reserved) : 0;
    push('postgres connections', t, level(ratio, 0.8, 0.95), `${used}/${max - reserved} (${pct(ratio)})`, '< 80% of usable');
    const long = s.sum('pg_long_running_queries', { target: t });
    push('long-running queries', t, long > 0 ? 'warn' : 'ok', String(long), `none over ${config.collectors.postgres.longQueryThresholdMs / 1000}s`);
    if (s.one('pg_replication_is_replica', { target: t }) === 1) {
      const lag = s.one('pg_replication_lag_seconds', { target: t }) ?? 0;
      push('replication lag', t, level(lag, 1, 30), `${lag.toFixed(2)}s`, '< 1s');
    }
    const blocked = s.sum('pg_blocked_sessions', { target: t });
    push('sessions blocked on locks', t, blocked > 0 ? 'warn' : 'ok', String(blocked), 'none');
  }
  for (const t of config.pgbouncer.map((p) => p.name)) {
    const up = s.one('pgbouncer_up', { target: t }) === 1;
    push('pgbouncer reachable', t, up ? 'ok' : 'fail', up ? 'up' : 'down', 'up');
    if (!up) continue;
    const waiting = s.sum('pgbouncer_pools_client_waiting_connections', { target: t });
    push('pgbouncer clients waiting', t, waiting > 0 ? 'warn' : 'ok', String(waiting), 'none');
  }
  for (const t of config.redis.map((r) => r.name)) {
    const up = s.one('redis_up', { target: t }) === 1;
    push('redis reachable', t, up ? 'ok' : 'fail', up ? 'up' : 'down', 'up');
    if (!up) continue;
    const used = s.one('redis_memory_used_bytes', { target: t }) ?? 0;
    const max = s.one('redis_memory_max_bytes', { target: t }) ?? 0;
    if (max > 0) push('redis memory', t, level(used / max, 0.75, 0.9), pct(used / max), '< 75% of maxmemory');
    const hits = s.one('redis_keyspace_hits_total', { target: t }) ?? 0;
    const misses = s.one('redis_keyspace_misses_total', { target: t }) ?? 0;
    if (hits + misses > 0) {
      const ratio = hits / (hits + misses);
      push('redis hit ratio', t, ratio < 0.9 ? 'warn' : 'ok', pct(ratio), '> 90% (since start)');
    }
  }
  for (const extra of extraChecks) out.push(...extra(s, config, nowS));
  for (const r of s.all('housekeeper_collector_success')) {
    if (r.value !== 1) push('collector', `${r.labels['collector']}/${r.labels['target']}`, 'fail', 'failed', 'succeeds');
  }
  return out;
}

/** Checks contributed by other collectors' modules (FAISS, backups, Elasticsearch, certificates). */
export type ExtraCheck = (s: Samples, config: Config, nowS: number) => CheckResult[];
export const extraChecks: ExtraCheck[] = [];

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
