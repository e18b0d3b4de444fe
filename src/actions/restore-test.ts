import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import pg from 'pg';
import { PG_DUMP_CUSTOM } from '../backups/manifest.ts';
import { findPgTool, libpqConnection, toolErrors, toolVersion, withPgEnv } from '../backups/pg.ts';
import {
  appendRestoreTest,
  RESTORE_TESTS_FILE,
  RESTORE_TESTS_TAIL_BYTES,
  restoreTestProblem,
  type RestoreTestRecord,
} from '../backups/restore-tests.ts';
import { listBackups, type StoredBackup } from '../backups/store.ts';
import { verifyBackup } from '../backups/verify.ts';
import type { BackupsConfig } from '../config.ts';
import { scrubText } from '../log.ts';
import * as sql from '../sql/backups.ts';
import type { PgTarget } from '../targets/postgres.ts';
import { defineAction } from './action.ts';
import { backupsConfig, BACKUPS_TARGET_KEY, errorText } from './backup-support.ts';
import { runArgv } from '../util/run-argv.ts';
import { checkSignal, pgTarget, plural, TargetName, withMaintenanceSession } from './support.ts';
import { num, str } from '../util/values.ts';

// The runbook's Friday restore test: the newest database backup of a target that passes
// verification (checksum, pg_restore --list) is restored with pg_restore into a scratch
// database created for the purpose on the same server (a fresh unique name, from
// template0, with the source's encoding and locale), the row counts of the configured
// tables are compared with the source's, and the scratch database is dropped — always,
// also when something failed or the run was aborted. The outcome is appended to
// restore-tests.jsonl (appendRestoreTest), from which the backups collector reports
// backup_last_restore_test_timestamp_seconds and backup_last_restore_test_success.

const Params = Type.Object(
  {
    target: TargetName('postgres target (config postgres[].name) whose dumps are tested; the scratch database is created on its server, and its role needs CREATEDB'),
    tables: Type.Array(Type.String({ minLength: 1, maxLength: 127, description: '"table" or "schema.table", checked against the catalog' }), {
      minItems: 1,
      maxItems: 100,
      uniqueItems: true,
      description: 'tables whose row counts are compared with the source',
    }),
    tolerance: Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'allowed |restored - source| / source per table (the source moves on after the dump)' }),
    backup: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[^./\\\\][^/\\\\]*$', description: 'test this backup file instead of the newest verified one' })),
    jobs: Type.Integer({ minimum: 1, maximum: 16, default: 1, description: 'pg_restore --jobs' }),
    timeout_seconds: Type.Integer({ minimum: 10, maximum: 86_400, default: 3600, description: 'for pg_restore and for each count' }),
  },
  { additionalProperties: false },
);
type P = Static<typeof Params>;

const DDL_TIMEOUT_MS = 120_000;

interface Table {
  schema: string;
  table: string;
}
const qualified = (t: Table): string => `${t.schema}.${t.table}`;


/** Each configured name, as exactly one table of the catalog; a clear error otherwise. */
async function resolveTables(c: pg.ClientBase, names: readonly string[], target: string): Promise<Table[]> {
  const out: Table[] = [];
  for (const name of names) {
    const rows = (await c.query<Record<string, unknown>>(sql.RESOLVE_TABLE, [name])).rows.map((r) => ({ schema: str(r['schema']), table: str(r['table']) }));
    if (rows.length === 0) throw new Error(`no table ${JSON.stringify(name)} in the database of "${target}"`);
    if (rows.length > 1) throw new Error(`table name ${JSON.stringify(name)} is ambiguous (${rows.map(qualified).join(', ')}): write schema.table`);
    out.push(rows[0] as Table);
  }
  return out;
}

async function countTables(c: pg.ClientBase, tables: readonly Table[], signal: AbortSignal): Promise<(number | null)[]> {
  const out: (number | null)[] = [];
  for (const t of tables) {
    signal.throwIfAborted();
    const exists = (await c.query<{ exists: boolean }>(sql.TABLE_EXISTS, [t.schema, t.table])).rows[0]?.exists === true;
    if (!exists) {
      out.push(null);
      continue;
    }
    const r = await c.query<{ n: string }>(sql.countRows(c.escapeIdentifier(t.schema), c.escapeIdentifier(t.table)));
    out.push(num(r.rows[0]?.n) ?? 0);
  }
  return out;
}

interface SourceInfo {
  name: string;
  encoding: string;
  collate: string;
  ctype: string;
  version: number;
  canCreate: boolean;
}

async function sourceInfo(c: pg.ClientBase): Promise<SourceInfo> {
  const r = (await c.query<Record<string, unknown>>(sql.CURRENT_DATABASE)).rows[0] ?? {};
  return {
    name: str(r['name']),
    encoding: str(r['encoding']),
    collate: str(r['collate']),
    ctype: str(r['ctype']),
    version: num(r['version']) ?? 0,
    canCreate: r['can_create'] === true,
  };
}

/** The dumps of this target, newest first (or the one named). */
async function candidates(cfg: BackupsConfig, p: P): Promise<StoredBackup[]> {
  const listing = await listBackups(cfg, ['database']);
  return listing.backups.filter(
    (b) => b.manifest.format === PG_DUMP_CUSTOM && b.manifest.source.target === p.target && (p.backup === undefined || b.name === p.backup),
  );
}

/** The newest candidate that passes verification; throws naming what failed when none does. */
async function latestVerified(cfg: BackupsConfig, p: P, signal: AbortSignal): Promise<{ backup: StoredBackup; skipped: string[] }> {
  const list = await candidates(cfg, p);
  const skipped: string[] = [];
  for (const b of list) {
    signal.throwIfAborted();
    const v = await verifyBackup(b.path, b.identity, b.manifest, { signal });
    if (v.status === 'ok') return { backup: b, skipped };
    skipped.push(`${b.name}: ${v.reason ?? v.status}`);
  }
  const which = p.backup !== undefined ? `backup ${p.backup} of "${p.target}"` : `database backup of "${p.target}"`;
  throw new Error(list.length === 0 ? `no housekeeper ${which} in ${cfg.directory}` : `no ${which} passed verification (${skipped.join(', ')})`);
}

function scratchName(): string {
  const t = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${sql.SCRATCH_PREFIX}${t}_${randomBytes(4).toString('hex')}`;
}

/** Drops scratch databases a dead run left behind (our prefix, nobody connected). */
async function dropLeftovers(target: PgTarget, signal: AbortSignal): Promise<string[]> {
  return withMaintenanceSession(target, signal, DDL_TIMEOUT_MS, async (c) => {
    const names = (await c.query<{ name: string }>(sql.LEFTOVER_SCRATCH)).rows.map((r) => r.name);
    for (const n of names) await c.query(sql.dropDatabase(c.escapeIdentifier(n), false));
    return names;
  });
}

/** Drops the scratch database with a deadline of its own (the run's signal may be aborted); returns a problem or undefined. */
async function dropScratch(target: PgTarget, name: string, version: number): Promise<string | undefined> {
  try {
    return await withMaintenanceSession(target, AbortSignal.timeout(DDL_TIMEOUT_MS + 10_000), DDL_TIMEOUT_MS, async (c) => {
      await c.query(sql.dropDatabase(c.escapeIdentifier(name), version >= 130000));
      const left = (await c.query<{ exists: boolean }>(sql.DATABASE_EXISTS, [name])).rows[0]?.exists === true;
      return left ? `scratch database ${name} still exists after DROP` : undefined;
    });
  } catch (err) {
    return `could not drop scratch database ${name}: ${errorText(err)}`;
  }
}

/** Runs fn on a connection to the scratch database; aborting the signal closes it. */
async function withScratch<R>(url: string, name: string, timeoutMs: number, signal: AbortSignal, fn: (c: pg.Client) => Promise<R>): Promise<R> {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(name)}`;
  const c = new pg.Client({ connectionString: u.toString(), application_name: 'housekeeper-restore-test', statement_timeout: timeoutMs, connectionTimeoutMillis: 30_000 });
  c.on('error', () => {}); // errors reach the awaiting query
  const onAbort = (): void => void c.end().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    signal.throwIfAborted();
    await c.connect();
    return await fn(c);
  } finally {
    signal.removeEventListener('abort', onAbort);
    await c.end().catch(() => {});
  }
}

/** The newest records of restore-tests.jsonl (its last RESTORE_TESTS_TAIL_BYTES), valid ones only. */
async function recentRecords(dir: string): Promise<RestoreTestRecord[]> {
  let fh;
  try {
    fh = await open(join(dir, RESTORE_TESTS_FILE), constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return [];
    const start = Math.max(0, st.size - RESTORE_TESTS_TAIL_BYTES);
    const buf = Buffer.alloc(st.size - start);
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    const lines = buf.subarray(0, bytesRead).toString('utf8').split('\n');
    if (start > 0) lines.shift();
    const out: RestoreTestRecord[] = [];
    for (const line of lines) {
      try {
        const v: unknown = JSON.parse(line);
        if (restoreTestProblem(v) === undefined) out.push(v as RestoreTestRecord);
      } catch {
        // torn or foreign line: the collector counts those
      }
    }
    return out;
  } finally {
    await fh.close();
  }
}

/** The record the last run of these params appended (same process), for verify(). */
const lastRun = new Map<string, RestoreTestRecord>();
const runKey = (p: P): string => JSON.stringify([p.target, p.backup ?? null, [...p.tables].sort()]);

export default defineAction({
  name: 'restore-test',
  description:
    'Restores the newest database backup of a postgres target that passes verification (size, SHA-256, pg_restore --list) ' +
    'into a new scratch database with a unique name on the same server (CREATE DATABASE from template0; pg_restore --dbname ' +
    'as argv with --no-owner --no-privileges --exit-on-error; the password only in a temporary pgpass file), compares the ' +
    'row counts of the configured tables (each checked against the catalog) with the source within `tolerance`, and drops ' +
    'the scratch database always — on success, failure or abort (WITH (FORCE)); scratch databases left by a crashed run are ' +
    'dropped by the next one. Appends the result to restore-tests.jsonl, which the backups collector reports. The source is ' +
    'only read. Idempotent: a repeat is another test. Verify: the recorded test succeeded.',
  params: Params,
  idempotent: true,
  disruptive: false,
  targetKey: () => BACKUPS_TARGET_KEY,

  async plan(ctx, p) {
    const cfg = backupsConfig(ctx);
    const target = pgTarget(ctx, p.target);
    const { info, tables } = await target.use(checkSignal(), async (c) => ({ info: await sourceInfo(c), tables: await resolveTables(c, p.tables, p.target) }));
    if (!info.canCreate) throw new Error(`the role of postgres target "${p.target}" may not CREATE DATABASE: restore-test needs CREATEDB`);
    const list = await candidates(cfg, p);
    if (list.length === 0) throw new Error(`no housekeeper database backup of "${p.target}" in ${cfg.directory}`);
    return {
      summary:
        `restore the newest verified of ${plural(list.length, 'dump')} of "${p.target}" (newest ${list[0]?.name}) into a scratch database ` +
        `${sql.SCRATCH_PREFIX}… on its server, compare row counts of ${tables.map(qualified).join(', ')}, drop it`,
      details: { candidates: list.map((b) => b.name), tables: tables.map(qualified), tolerance: p.tolerance },
    };
  },

  async run(ctx, p, signal) {
    const cfg = backupsConfig(ctx);
    const url = pgTarget(ctx, p.target).url;
    const target = pgTarget(ctx, p.target);
    const timeoutMs = p.timeout_seconds * 1000;
    const tolerance = p.tolerance;
    const startedAt = new Date();
    let backup: StoredBackup | undefined;
    let skipped: string[] = [];
    let scratch: string | undefined;
    let version = 0;
    let tool: { name: string; version: string } | undefined;
    let leftovers: string[] = [];
    const checks: NonNullable<RestoreTestRecord['checks']> = [];
    let failure: string | undefined;
    try {
      const info = await target.use(signal, (c) => sourceInfo(c));
      version = info.version;
      if (!info.canCreate) throw new Error(`the role of postgres target "${p.target}" may not CREATE DATABASE: restore-test needs CREATEDB`);
      const tables = await target.use(signal, (c) => resolveTables(c, p.tables, p.target));
      ({ backup, skipped } = await latestVerified(cfg, p, signal));
      const bin = findPgTool('pg_restore');
      tool = { name: 'pg_restore', version: await toolVersion(bin, signal) };
      leftovers = await dropLeftovers(target, signal);

      const name = scratchName();
      await withMaintenanceSession(target, signal, DDL_TIMEOUT_MS, (c) =>
        c.query(sql.createDatabase(c.escapeIdentifier(name), c.escapeLiteral(info.encoding), c.escapeLiteral(info.collate), c.escapeLiteral(info.ctype))),
      );
      scratch = name;

      const conn = libpqConnection(url, name);
      const dump = backup.path;
      const exit = await withPgEnv(conn.password, (env) => {
        // runArgv listens for aborts only once the child runs: one that came before must stop here.
        signal.throwIfAborted();
        return runArgv(
          [bin, '--no-password', `--dbname=${conn.conninfo}`, '--no-owner', '--no-privileges', '--exit-on-error', `--jobs=${p.jobs}`, '--', dump],
          { env, cwd: undefined, timeoutMs, signal },
        );
      });
      signal.throwIfAborted();
      if (exit.code !== 0) throw new Error(`pg_restore exited ${exit.code ?? exit.signal}: ${toolErrors(exit.output, 'pg_restore')}`);

      const restored = await withScratch(url, name, timeoutMs, signal, (c) => countTables(c, tables, signal));
      const source = await withMaintenanceSession(target, signal, timeoutMs, (c) => countTables(c, tables, signal));
      tables.forEach((t, i) => {
        const expected = source[i] ?? 0;
        const actual = restored[i] ?? null;
        const ok = actual !== null && Math.abs(actual - expected) <= Math.floor(tolerance * expected);
        checks.push({ name: `${qualified(t)} rows`, expected, actual, ok });
      });
      const bad = checks.filter((c) => !c.ok);
      if (bad.length > 0) {
        failure = `row counts differ beyond tolerance ${tolerance}: ${bad.map((c) => `${c.name} ${c.actual ?? 'missing'} restored vs ${c.expected} in the source`).join(', ')}`;
      }
    } catch (err) {
      failure = signal.aborted ? `aborted: ${errorText(signal.reason)}` : errorText(err);
    } finally {
      if (scratch !== undefined) {
        const dropProblem = await dropScratch(target, scratch, version);
        if (dropProblem !== undefined) failure = failure === undefined ? dropProblem : `${failure}; ${dropProblem}`;
      }
    }

    const record: RestoreTestRecord = {
      record_version: 1,
      kind: 'database',
      backup: backup?.name ?? '(none)',
      ...(backup ? { backup_sha256: backup.manifest.sha256 } : {}),
      started_at: startedAt.toISOString(),
      finished_at: new Date().toISOString(),
      success: failure === undefined,
      target: p.target,
      ...(scratch !== undefined ? { scratch_database: scratch } : {}),
      checks,
      // Errors come from our code, pg_restore's error lines and the server; scrubbed all the same.
      error: failure === undefined ? null : scrubText(failure).slice(0, 2000),
      ...(tool ? { tool } : {}),
    };
    await appendRestoreTest(cfg.directory, record);
    lastRun.set(runKey(p), record);
    ctx.log.info(
      { action: 'restore-test', target: p.target, backup: record.backup, scratch_database: scratch, success: record.success, error: record.error },
      'restore test recorded',
    );
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    const older = skipped.length > 0 ? ` (newer dumps failed verification: ${skipped.join(', ')})` : '';
    const dropped = leftovers.length > 0 ? `; dropped leftover scratch databases ${leftovers.join(', ')}` : '';
    return {
      summary: record.success
        ? `restored ${record.backup} into ${scratch} and dropped it: ${checks.map((c) => `${c.name} ${c.actual}`).join(', ')} match the source${older}${dropped}`
        : `restore test of ${record.backup} FAILED: ${record.error}${older}${dropped}`,
      details: { record },
    };
  },

  async verify(ctx, p) {
    const cfg = backupsConfig(ctx);
    const mine = lastRun.get(runKey(p));
    const records = (await recentRecords(cfg.directory)).filter((r) => r.kind === 'database' && r.target === p.target);
    const latest = records.reduce<RestoreTestRecord | undefined>((a, r) => (a === undefined || Date.parse(r.finished_at) >= Date.parse(a.finished_at) ? r : a), undefined);
    if (!latest) return { fixed: false, detail: `no restore test of "${p.target}" recorded in ${RESTORE_TESTS_FILE}` };
    if (mine && (latest.finished_at !== mine.finished_at || latest.backup !== mine.backup)) {
      return { fixed: false, detail: `the test this run made is not the latest record for "${p.target}"` };
    }
    return latest.success
      ? { fixed: true, detail: `restore test of ${latest.backup} at ${latest.finished_at} succeeded (${plural(latest.checks?.length ?? 0, 'check')} passed)` }
      : { fixed: false, detail: `restore test of ${latest.backup} at ${latest.finished_at} failed: ${latest.error ?? 'no reason recorded'}` };
  },
});
