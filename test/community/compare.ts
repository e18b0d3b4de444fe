// The community side-by-side, shared by test/community.test.ts and bench/community.ts: the
// expressions of test/community/expressions.yml, normalised as its header says, evaluated
// once per scrape job in one Prometheus, and the load that makes their rates non-zero.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import { parse } from 'yaml';
import type { PrometheusServer, QueryResult } from '../harness/prometheus.ts';
import type { Stack } from '../harness/stack.ts';
import { rewriteExpr } from '../../src/alerts/selectors.ts';
import { comparisonsAsBool } from '../helpers/promql-rewrite.ts';
import { elapse } from '../helpers/wait.ts';

export const EXPRESSIONS_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'expressions.yml');

export type System = 'postgres' | 'redis' | 'pgbouncer';
export const SYSTEMS: readonly System[] = ['postgres', 'redis', 'pgbouncer'];

export interface CommunityExpression {
  id: string;
  system: System;
  kind: 'alert' | 'panel' | 'record';
  source: string;
  expr: string;
}

/** Grafana's interval variables (the file's rule 1); Prometheus scrapes every second. */
export const INTERVALS: Readonly<Record<string, string>> = { __rate_interval: '1m', __interval: '15s', __range: '5m' };
/** Evaluation happens this far in the past, so `offset -$__interval` (15 s) has data. */
export const EVAL_LAG_MS = 15_000;

export function loadExpressions(file = EXPRESSIONS_FILE): CommunityExpression[] {
  const doc = parse(fs.readFileSync(file, 'utf8')) as { expressions?: unknown };
  if (!Array.isArray(doc.expressions)) throw new Error(`${file}: no expressions list`);
  const seen = new Set<string>();
  return doc.expressions.map((raw: unknown, i: number) => {
    const e = raw as Partial<CommunityExpression>;
    const where = `${file}: expressions[${i}]`;
    for (const k of ['id', 'system', 'kind', 'source', 'expr'] as const) {
      if (typeof e[k] !== 'string' || e[k] === '') throw new Error(`${where}: missing ${k}`);
    }
    if (!SYSTEMS.includes(e.system as System)) throw new Error(`${where}: unknown system ${e.system}`);
    if (!['alert', 'panel', 'record'].includes(e.kind as string)) throw new Error(`${where}: unknown kind ${e.kind}`);
    if (seen.has(e.id as string)) throw new Error(`${where}: duplicate id ${e.id}`);
    seen.add(e.id as string);
    return e as CommunityExpression;
  });
}

/** Rules 1-3 of the file's header: the expression as it is evaluated, before the job matcher. */
export function normalise(expr: string): string {
  let out = expr.replace(/\$\{(__\w+)\}|\$(__\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const v = INTERVALS[braced ?? bare ?? ''];
    if (v === undefined) throw new Error(`unknown interval variable ${whole} in: ${expr}`);
    return v;
  });
  // A template variable (Grafana's $name / ${name}, jsonnet's %s) as a matcher's value: "All".
  out = out.replace(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"(?:\$\{?\w+\}?|%s)"/g, '$1=~".*"');
  if (/\$\w|%s/.test(out.replace(/"(?:[^"\\]|\\.)*"/g, '""'))) throw new Error(`a template variable is left in: ${out}`);
  return comparisonsAsBool(out);
}

/**
 * The expression restricted to one scrape job (rule 4), by the shipped alerts' own selector
 * rewriting (src/alerts/selectors.ts): every vector selector's job matcher becomes `job="..."`.
 */
export function forJob(expr: string, job: string): string {
  const sel = `job=${JSON.stringify(job)}`;
  return rewriteExpr(normalise(expr), { selector: sel, nodeSelector: sel });
}

function hasData(r: QueryResult): boolean {
  if (r.resultType === 'vector' || r.resultType === 'matrix') return r.result.length > 0;
  return true; // a scalar or string always has a value
}

export interface Verdict {
  e: CommunityExpression;
  /** job → answered (non-empty result) */
  answered: Record<string, boolean>;
}

/** Evaluates every expression once per job, at `time` (ms since epoch). */
export async function evaluate(
  prom: PrometheusServer,
  exprs: readonly CommunityExpression[],
  jobs: readonly string[],
  time: number,
): Promise<Verdict[]> {
  const out: Verdict[] = [];
  for (const e of exprs) {
    const answered: Record<string, boolean> = {};
    for (const job of jobs) answered[job] = hasData(await prom.queryRaw(forJob(e.expr, job), time));
    out.push({ e, answered });
  }
  return out;
}

export interface Tally {
  total: number;
  byJob: Record<string, number>;
  bySystem: Record<System, Record<string, number>>;
  /** Expressions `job` answers and `other` does not. */
  onlyIn: (job: string, other: string) => CommunityExpression[];
  /** Expressions no job answers. */
  none: CommunityExpression[];
}

export function tally(verdicts: readonly Verdict[], jobs: readonly string[]): Tally {
  const zero = (): Record<string, number> => Object.fromEntries(jobs.map((j) => [j, 0]));
  const byJob = zero();
  const bySystem = { postgres: zero(), redis: zero(), pgbouncer: zero() } as Record<System, Record<string, number>>;
  for (const v of verdicts) {
    for (const j of jobs) {
      if (!v.answered[j]) continue;
      byJob[j] = (byJob[j] ?? 0) + 1;
      bySystem[v.e.system][j] = (bySystem[v.e.system][j] ?? 0) + 1;
    }
  }
  return {
    total: verdicts.length,
    byJob,
    bySystem,
    onlyIn: (job, other) => verdicts.filter((v) => v.answered[job] && !v.answered[other]).map((v) => v.e),
    none: verdicts.filter((v) => jobs.every((j) => !v.answered[j])).map((v) => v.e),
  };
}

/** The "only the anchor answers" list: one line per expression, the work queue for new metrics. */
export function gapReport(t: Tally, hk: string, anchor: string): string {
  const lines = [
    `community expressions: ${t.total}; answered by ${hk}: ${t.byJob[hk]}, by ${anchor}: ${t.byJob[anchor]}`,
    ...SYSTEMS.map((s) => `  ${s}: ${hk} ${t.bySystem[s][hk]}, ${anchor} ${t.bySystem[s][anchor]}`),
    '',
    `only ${anchor} answers (${t.onlyIn(anchor, hk).length}):`,
    ...t.onlyIn(anchor, hk).map((e) => `  ${e.id}  [${e.source}]\n      ${e.expr}`),
    '',
    `only ${hk} answers (${t.onlyIn(hk, anchor).length}):`,
    ...t.onlyIn(hk, anchor).map((e) => `  ${e.id}  [${e.source}]`),
    '',
    `answered by neither (${t.none.length}):`,
    ...t.none.map((e) => `  ${e.id}  [${e.source}]`),
  ];
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------
// Load: the chatbot's kind of traffic, through PgBouncer and on Redis, so that rates,
// hit ratios and tuple counters move while Prometheus scrapes.

export interface Load {
  stop(): Promise<void>;
}

export async function startLoad(stack: Stack): Promise<Load> {
  const admin = new pg.Client({ connectionString: stack.primary.url({ db: 'app' }) });
  await admin.connect();
  try {
    await admin.query('CREATE TABLE IF NOT EXISTS community_load (id bigserial PRIMARY KEY, body text NOT NULL, n int NOT NULL DEFAULT 0)');
    await admin.query(`INSERT INTO community_load (body) SELECT 'row ' || g FROM generate_series(1, 2000) g`);
    await admin.query('ANALYZE community_load');
  } finally {
    await admin.end();
  }
  const db = new pg.Client({ connectionString: stack.pgbouncer.url('app') });
  await db.connect();
  const redis = new Redis(stack.redis.url(0), { maxRetriesPerRequest: 1 });
  let running = true;
  let i = 0;
  const loop = (async () => {
    // Bounded by stop() (and by the test's own timeout): one round every 50 ms.
    while (running) {
      i++;
      await db.query('SELECT count(*) FROM community_load WHERE id % 7 = $1', [i % 7]);
      await db.query('INSERT INTO community_load (body) VALUES ($1)', [`row ${i}`]);
      await db.query('UPDATE community_load SET n = n + 1 WHERE id = $1', [1 + (i % 2000)]);
      await db.query('DELETE FROM community_load WHERE id = (SELECT min(id) FROM community_load)');
      if (i % 5 === 0) {
        await db.query('BEGIN');
        await db.query('INSERT INTO community_load (body) VALUES ($1)', ['rolled back']);
        await db.query('ROLLBACK');
      }
      await redis.set(`cache:query:${i % 200}`, `answer ${i}`, 'EX', 3600);
      await redis.get(`cache:query:${i % 250}`); // hits and misses
      await redis.hset(`session:${i % 50}`, { user: String(i % 50), seen: String(Date.now()) });
      await elapse(50, 'the load\'s pace');
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      redis.disconnect();
      await db.end();
    },
  };
}
