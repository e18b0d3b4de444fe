import pg from 'pg';
import type { CleanupConfig, Config } from '../config.ts';
import type { MetricFactory } from '../metrics/registry.ts';
import { sourceTable, TableCheckError, type Relation } from '../retention/table.ts';
import * as sql from '../sql/retention.ts';
import type { PgTarget } from '../targets/postgres.ts';
import { defineCollector, type CollectContext } from './collector.ts';

// Whether the runbook's row retention is kept ("chat logs: remove older than 90 days;
// conversations: archive older than 30 days"): for each actions.cleanup and actions.archive
// entry, the age of the oldest row of its table against the entry's older_than. The Monday
// schedule keeps it; PostgresRetentionNotKept fires when it has not. One collector per
// Postgres target that has entries, on that target's pool; pg_up and the target's health
// are the postgres collector's. An entry whose table or column is wrong (or unreadable) is
// that entry's failure, never the scrape's; a target that does not answer fails the
// collection like any other.

const LABELS = ['entry', 'kind', 'table'];

function declare(f: MetricFactory) {
  const g = f.gauge.bind(f);
  return {
    age: g(
      'pg_retention_oldest_row_age_seconds',
      'Age of the oldest row of a cleanup or archive entry\'s table by its time column, by the database\'s clock (0: empty table; absent when the check fails).',
      LABELS,
    ),
    maxAge: g('pg_retention_max_age_seconds', 'The entry\'s older_than: rows older than this are deleted (kind cleanup) or archived (kind archive) by its action.', LABELS),
    success: g(
      'pg_retention_check_success',
      'Whether the entry\'s table and time column were found in the catalog and read (1) or not (0: no such table or column, not an ordinary table, not a time type, no SELECT privilege, or the query failed).',
      LABELS,
    ),
  };
}
type Metrics = ReturnType<typeof declare>;

type Kind = 'cleanup' | 'archive';
interface Entry {
  kind: Kind;
  name: string;
  config: CleanupConfig;
}

function entriesOf(config: Config, target: string): Entry[] {
  const out: Entry[] = [];
  for (const kind of ['cleanup', 'archive'] as const) {
    for (const [name, e] of Object.entries(config.actions[kind])) if (e.postgres === target) out.push({ kind, name, config: e });
  }
  return out;
}

/** Each entry's last failure per target, so a failure is logged at warn when it starts or changes, not every scrape. */
const lastErrors = new WeakMap<PgTarget, Map<string, string>>();

/**
 * Each entry's table as its last successful check found it, per target. The next scrape
 * reads the age with the catalog rows of the same check in one statement (not a check and
 * then a read: two statements per entry and scrape); only when those rows differ from these,
 * or the statement fails, is the entry checked and read as on its first scrape, so it passes
 * and fails exactly as if it had been checked anew.
 */
const resolved = new WeakMap<PgTarget, Map<CleanupConfig, Relation & { column: string }>>();

const orUndefined = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));

/** Whether the catalog rows (checkedOldestRowAge's JSON) are the one relation the check accepted. */
function sameRelation(rows: unknown, t: Relation): boolean {
  if (!Array.isArray(rows) || rows.length !== 1) return false;
  const r = rows[0] as Record<string, unknown>;
  return (
    orUndefined(r['schema']) === t.schema &&
    orUndefined(r['table']) === t.table &&
    orUndefined(r['kind']) === t.kind &&
    orUndefined(r['oid']) === t.oid &&
    orUndefined(r['column']) === t.column &&
    orUndefined(r['column_type']) === t.columnType &&
    orUndefined(r['base_type']) === t.baseType &&
    orUndefined(r['base_type_schema']) === t.baseTypeSchema &&
    (r['can_select'] === true) === t.canSelect &&
    (r['can_delete'] === true) === t.canDelete &&
    (r['can_insert'] === true) === t.canInsert
  );
}

/** The age by the cached check, or undefined when the entry must be checked anew. */
async function ageByCachedCheck(ctx: CollectContext<PgTarget>, client: pg.PoolClient, e: CleanupConfig, t: Relation & { column: string }): Promise<number | undefined> {
  const text = sql.checkedOldestRowAge(client.escapeIdentifier(t.schema), client.escapeIdentifier(t.table), client.escapeIdentifier(t.column));
  try {
    const res = await client.query<{ catalog: unknown; age_seconds: number }>(text, [e.schema ?? null, e.table, e.column ?? null]);
    const row = res.rows[0];
    return row !== undefined && sameRelation(row.catalog, t) ? Number(row.age_seconds ?? 0) : undefined;
  } catch (err) {
    // The table dropped or renamed, a privilege revoked: the full check says which.
    if (ctx.signal.aborted || !(err instanceof pg.DatabaseError)) throw err;
    return undefined;
  }
}

export default defineCollector<PgTarget, Metrics>({
  name: 'postgres_retention',
  enabledByDefault: true,
  // Only the servers that hold a configured entry's table: no entries, no queries.
  targets: (t, config) => t.postgres.filter((p) => entriesOf(config, p.name).length > 0),
  metrics: declare,
  async collect(ctx: CollectContext<PgTarget>, m, config) {
    const errors = lastErrors.get(ctx.target) ?? new Map<string, string>();
    lastErrors.set(ctx.target, errors);
    const tables = resolved.get(ctx.target) ?? new Map<CleanupConfig, Relation & { column: string }>();
    resolved.set(ctx.target, tables);
    await ctx.target.use(ctx.signal, async (client) => {
      for (const { kind, name, config: e } of entriesOf(config, ctx.target.name)) {
        const labels = { entry: name, kind, table: e.schema === undefined ? e.table : `${e.schema}.${e.table}` };
        const key = `${kind}/${name}`;
        const where = { target: ctx.target.name, entry: name, kind };
        ctx.set(m.maxAge, labels, e.olderThanMs / 1000);
        try {
          const known = tables.get(e);
          let age = known === undefined ? undefined : await ageByCachedCheck(ctx, client, e, known);
          if (age === undefined) {
            tables.delete(e);
            const t = await sourceTable(client, e, `actions.${kind}.${name}`, 'the retention check', { readOnly: true });
            const text = sql.oldestRowAge(client.escapeIdentifier(t.schema), client.escapeIdentifier(t.table), client.escapeIdentifier(t.column));
            const res = await client.query<{ age_seconds: number }>(text);
            age = Number(res.rows[0]?.age_seconds ?? 0);
            tables.set(e, t);
          }
          ctx.set(m.age, labels, age);
          ctx.set(m.success, labels, 1);
          if (errors.delete(key)) ctx.log.info(where, 'retention check recovered');
        } catch (err) {
          // A wrong table or a refused query is this entry's; a broken connection or the
          // deadline is the target's, and fails the collection.
          if (ctx.signal.aborted || !(err instanceof TableCheckError || err instanceof pg.DatabaseError)) throw err;
          ctx.set(m.success, labels, 0);
          const msg = err.message;
          if (errors.get(key) !== msg) ctx.log.warn({ ...where, err: msg }, 'retention check failed');
          else ctx.log.debug({ ...where, err: msg }, 'retention check failed');
          errors.set(key, msg);
        }
      }
    });
  },
});
