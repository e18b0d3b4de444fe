import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import type { BackupKindName, BackupsConfig } from '../config.ts';
import { redactConfig } from '../backups/config-copy.ts';
import { PG_DUMP_CUSTOM, publishBackup, type Manifest, type NewManifest } from '../backups/manifest.ts';
import { findPgTool, libpqConnection, toolErrors, toolVersion, withPgEnv } from '../backups/pg.ts';
import { cleanupLeftovers, freeBytes, groupOf, listBackups, newBackupName, pruneGroup, tempNameFor, type StoredBackup } from '../backups/store.ts';
import { identityOf, verifyBackup, type Verdict } from '../backups/verify.ts';
import { indexFiles, snapshotVectorIndex, TAR } from '../backups/vector-index.ts';
import { defineAction, type ActionContext } from './action.ts';
import { backupsConfig, BACKUPS_TARGET_KEY, bytes, createPrivateFile, errorText, fsyncFile, writePrivateFile } from './backup-support.ts';
import { runArgv } from '../util/run-argv.ts';
import { version } from '../version.ts';
import { pgTarget, plural, TargetName } from './support.ts';

// The runbook's nightly backup: a Postgres custom-format dump, a vector index snapshot and a
// copy of the configuration, each published with its manifest (src/backups/manifest.ts,
// docs/backups.md), checked (size, SHA-256, pg_restore --list), and only then is the
// retention applied to its group (kind + source), so a bad new backup never costs an old
// good one. Everything is written under a hidden temp name in the backup directory first.

const Params = Type.Object(
  {
    database: Type.Optional(TargetName('dump this postgres target\'s database (config postgres[].name) with pg_dump -Fc')),
    vector_index: Type.Optional(TargetName('archive this FAISS index (config faiss[].name) with its sidecar files')),
    configuration: Type.Optional(
      Type.Union([Type.Literal('redacted'), Type.Literal('verbatim')], {
        description: 'copy the config file: redacted (inline secrets replaced by ${HOUSEKEEPER_REDACTED_…} references) or verbatim',
      }),
    ),
    timeout_seconds: Type.Integer({ minimum: 10, maximum: 86_400, default: 3600, description: 'per program run (pg_dump, tar)' }),
  },
  { additionalProperties: false },
);
type P = Static<typeof Params>;

/** One item to back up, as the params ask for it. */
type Item =
  | { kind: 'database'; target: string }
  | { kind: 'vector_index'; index: string }
  | { kind: 'configuration'; mode: 'redacted' | 'verbatim' };

function items(p: P): Item[] {
  const out: Item[] = [];
  if (p.database !== undefined) out.push({ kind: 'database', target: p.database });
  if (p.vector_index !== undefined) out.push({ kind: 'vector_index', index: p.vector_index });
  if (p.configuration !== undefined) out.push({ kind: 'configuration', mode: p.configuration });
  if (out.length === 0) throw new Error('backup-run: give at least one of database, vector_index, configuration');
  return out;
}

const labelOf = (it: Item): string | undefined => (it.kind === 'database' ? it.target : it.kind === 'vector_index' ? it.index : undefined);

function describe(it: Item): string {
  if (it.kind === 'database') return `database of "${it.target}" (pg_dump -Fc)`;
  if (it.kind === 'vector_index') return `FAISS index "${it.index}" with its sidecars (tar)`;
  return `configuration (${it.mode})`;
}

/** The manifest's source for an item: config names and paths, never a URL. */
function sourceOf(ctx: ActionContext, it: Item): Manifest['source'] {
  if (it.kind === 'database') {
    return { type: 'postgres', target: it.target, database: libpqConnection(pgTarget(ctx, it.target).url).database };
  }
  if (it.kind === 'vector_index') return { type: 'faiss', target: it.index, path: faissIndex(ctx, it.index).path };
  return { type: 'file', path: ctx.config.file };
}

function faissIndex(ctx: ActionContext, name: string) {
  const f = ctx.config.faiss.find((x) => x.name === name);
  if (!f) throw new Error(`no faiss index named "${name}" in config`);
  return f;
}

/** What one item produced. */
interface Made {
  kind: BackupKindName;
  file: string;
  path: string;
  identity: string;
  manifest: Manifest;
  verdict: Verdict;
  note?: Record<string, unknown>;
  pruned: string[];
}

/** The last run's backups per params, for verify() (same process: the engine calls it right after run). */
const lastRun = new Map<string, Made[]>();
const runKey = (p: P): string => JSON.stringify([p.database ?? null, p.vector_index ?? null, p.configuration ?? null]);

/** Refuses to start a backup that the last one of its group says would not fit. */
async function checkSpace(cfg: BackupsConfig, previous: StoredBackup | undefined): Promise<void> {
  if (!previous) return;
  const free = await freeBytes(cfg.directory);
  const need = Math.ceil(previous.manifest.size_bytes * 1.1);
  if (free < need) {
    throw new Error(`only ${bytes(free)} free in ${cfg.directory}; the last backup of this kind was ${bytes(previous.manifest.size_bytes)}`);
  }
}

interface Produced {
  tmp: string;
  meta: Omit<NewManifest, 'createdAt'>;
  note?: Record<string, unknown>;
}

async function produceDatabase(ctx: ActionContext, target: string, tmp: string, timeoutMs: number, signal: AbortSignal): Promise<Produced> {
  const conn = libpqConnection(pgTarget(ctx, target).url);
  const bin = findPgTool('pg_dump');
  const version = await toolVersion(bin, signal);
  await createPrivateFile(tmp);
  // The password goes through a temporary pgpass file; the argv holds the URL without it.
  const exit = await withPgEnv(conn.password, (env) => {
    // runArgv listens for aborts only once the child runs: one that came before must stop here.
    signal.throwIfAborted();
    return runArgv([bin, '--format=custom', '--no-password', `--file=${tmp}`, `--dbname=${conn.conninfo}`], { env, cwd: undefined, timeoutMs, signal });
  });
  signal.throwIfAborted();
  if (exit.code !== 0) throw new Error(`pg_dump of "${target}" exited ${exit.code ?? exit.signal}: ${toolErrors(exit.output, 'pg_dump')}`);
  await fsyncFile(tmp);
  return {
    tmp,
    meta: { kind: 'database', format: PG_DUMP_CUSTOM, tool: { name: 'pg_dump', version }, source: { type: 'postgres', target, database: conn.database } },
  };
}

async function produceVectorIndex(ctx: ActionContext, name: string, tmp: string, timeoutMs: number, signal: AbortSignal): Promise<Produced> {
  const index = faissIndex(ctx, name);
  const version = await toolVersion(TAR, signal);
  await createPrivateFile(tmp);
  const { files, attempts } = await snapshotVectorIndex(index.path, tmp, { timeoutMs, signal });
  await fsyncFile(tmp);
  return {
    tmp,
    meta: { kind: 'vector_index', format: 'tar', tool: { name: 'tar', version }, source: { type: 'faiss', target: name, path: index.path } },
    note: { files, copies: attempts },
  };
}

async function produceConfiguration(ctx: ActionContext, mode: 'redacted' | 'verbatim', tmp: string): Promise<Produced> {
  const raw = await readFile(ctx.config.file);
  let note: Record<string, unknown>;
  let data: string | Buffer;
  if (mode === 'redacted') {
    const r = redactConfig(raw.toString('utf8'));
    data = r.text;
    note = { may_hold_secrets: false, redacted_fields: r.fields };
  } else {
    data = raw;
    note = { may_hold_secrets: true };
  }
  await writePrivateFile(tmp, data);
  return {
    tmp,
    // The format says what the bytes are, and whether they may hold the config's secrets.
    meta: { kind: 'configuration', format: mode === 'redacted' ? 'yaml+redacted' : 'yaml+secrets', tool: { name: 'housekeeper', version: version() }, source: { type: 'file', path: ctx.config.file } },
    note,
  };
}

async function backupOne(ctx: ActionContext, cfg: BackupsConfig, it: Item, existing: StoredBackup[], timeoutMs: number, signal: AbortSignal): Promise<Made> {
  signal.throwIfAborted();
  const source = sourceOf(ctx, it);
  const group = groupOf({ kind: it.kind, source });
  const previous = existing.find((b) => b.group === group);
  await checkSpace(cfg, previous);
  const finalName = await newBackupName(cfg, it.kind, labelOf(it), new Date());
  const tmp = tempNameFor(cfg, finalName);
  let manifest: Manifest;
  let produced: Produced;
  try {
    produced =
      it.kind === 'database'
        ? await produceDatabase(ctx, it.target, tmp, timeoutMs, signal)
        : it.kind === 'vector_index'
          ? await produceVectorIndex(ctx, it.index, tmp, timeoutMs, signal)
          : await produceConfiguration(ctx, it.mode, tmp);
    signal.throwIfAborted();
    manifest = await publishBackup(tmp, finalName, produced.meta);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const path = join(cfg.directory, finalName);
  const identity = identityOf(await stat(path, { bigint: true }));
  const verdict = await verifyBackup(path, identity, manifest, { signal });
  const made: Made = { kind: it.kind, file: finalName, path, identity, manifest, verdict, pruned: [], ...(produced.note ? { note: produced.note } : {}) };
  if (verdict.status !== 'ok') return made;
  // Retention only after the new backup passed: the group's newest is then a good one.
  const listing = await listBackups(cfg, [it.kind]);
  const members = listing.backups.filter((b) => b.group === group);
  made.pruned = (await pruneGroup(cfg, members, Date.now())).deleted;
  return made;
}

function madeLine(m: Made): string {
  const ok = m.verdict.status === 'ok' ? `verified (${m.verdict.detail})` : `FAILED verification: ${m.verdict.reason ?? m.verdict.status}: ${m.verdict.detail}`;
  const pruned = m.pruned.length > 0 ? `; pruned ${plural(m.pruned.length, 'old backup')}` : '';
  return `${m.kind} → ${m.file} (${bytes(m.manifest.size_bytes)}) ${ok}${pruned}`;
}

/** Checks the backups a run made: each still exists unchanged with a valid manifest naming it, and passed. */
async function checkMade(ctx: ActionContext, made: Made[]): Promise<{ fixed: boolean; detail: string }> {
  const cfg = backupsConfig(ctx);
  const problems: string[] = [];
  const listing = await listBackups(cfg, [...new Set(made.map((m) => m.kind))]);
  for (const m of made) {
    const now = listing.backups.find((b) => b.kind === m.kind && b.name === m.file);
    if (!now) {
      problems.push(`${m.file}: missing, or its manifest is missing or invalid`);
      continue;
    }
    // Same file, same manifest: the verdict reached in run() stands; otherwise judge again.
    const verdict =
      now.identity === m.identity && now.manifest.sha256 === m.manifest.sha256 ? m.verdict : await verifyBackup(now.path, now.identity, now.manifest);
    if (verdict.status !== 'ok') problems.push(`${m.file}: ${verdict.reason ?? verdict.status}: ${verdict.detail}`);
  }
  return problems.length === 0
    ? { fixed: true, detail: `${plural(made.length, 'new backup')} present and verified: ${made.map((m) => m.file).join(', ')}` }
    : { fixed: false, detail: problems.join('; ') };
}

export default defineAction({
  name: 'backup-run',
  description:
    'Makes the runbook\'s backups into backups.directory: database (pg_dump -Fc of a postgres target, as argv; the password ' +
    'only in a temporary 0600 pgpass file, never on the command line), vector_index (a tar of a FAISS index file and its ' +
    'sidecars, copied again if a rebuild replaced them mid-copy), configuration (the config file, by default with inline ' +
    'secrets replaced by ${HOUSEKEEPER_REDACTED_…} references). Each is written under a hidden temp name (mode 0600), ' +
    'published with its manifest (kind, time, size, SHA-256; no secrets) by rename, then checked (size, SHA-256, and ' +
    'pg_restore --list for dumps); only after that check passes is retention applied to its kind and source ' +
    '(backups.retention: keep newest N, drop older than max_age; the newest always stays; foreign backups never touched). ' +
    'Idempotent in effect: a repeated run makes one more backup, which retention bounds. Verify: each new backup exists, ' +
    'matches its manifest, and passed verification.',
  params: Params,
  idempotent: true,
  disruptive: false,
  targetKey: () => BACKUPS_TARGET_KEY,

  async plan(ctx, p) {
    const cfg = backupsConfig(ctx);
    const list = items(p);
    const now = new Date();
    const planned: Record<string, unknown>[] = [];
    for (const it of list) {
      const source = sourceOf(ctx, it);
      if (it.kind === 'vector_index') await indexFiles(source.path as string);
      planned.push({ kind: it.kind, source, file: await newBackupName(cfg, it.kind, labelOf(it), now) });
    }
    const r = cfg.retention;
    const retention = `keep ${r.keep} per kind and source${r.maxAgeMs !== undefined ? `, none older than ${Math.round(r.maxAgeMs / 3_600_000)} h` : ''}`;
    return {
      summary: `back up ${list.map(describe).join(', ')} into ${cfg.directory}; then ${retention}`,
      details: { backups: planned, retention: { keep: r.keep, max_age_seconds: r.maxAgeMs === undefined ? null : r.maxAgeMs / 1000 } },
    };
  },

  async run(ctx, p, signal) {
    const cfg = backupsConfig(ctx);
    const list = items(p);
    const timeoutMs = p.timeout_seconds * 1000;
    const leftovers = await cleanupLeftovers(cfg, Date.now());
    const existing = (await listBackups(cfg)).backups;
    const made: Made[] = [];
    const failed: string[] = [];
    for (const it of list) {
      try {
        const m = await backupOne(ctx, cfg, it, existing, timeoutMs, signal);
        made.push(m);
        ctx.log.info({ action: 'backup-run', kind: m.kind, file: m.file, size_bytes: m.manifest.size_bytes, verified: m.verdict.status, pruned: m.pruned }, 'backup made');
      } catch (err) {
        if (signal.aborted) throw err;
        failed.push(`${describe(it)}: ${errorText(err)}`);
      }
    }
    lastRun.set(runKey(p), made);
    const bad = made.filter((m) => m.verdict.status !== 'ok');
    if (failed.length > 0 || bad.length > 0) {
      const done = made.length > 0 ? `; made: ${made.map(madeLine).join('; ')}` : '';
      throw new Error(`backup-run: ${[...failed, ...bad.map(madeLine)].join('; ')}${done}`);
    }
    return {
      summary: `backups made: ${made.map(madeLine).join('; ')}`,
      details: {
        backups: made.map((m) => ({
          kind: m.kind,
          file: m.file,
          size_bytes: m.manifest.size_bytes,
          sha256: m.manifest.sha256,
          format: m.manifest.format,
          source: m.manifest.source,
          verified: m.verdict.detail,
          pruned: m.pruned,
          ...m.note,
        })),
        leftovers_removed: leftovers,
      },
    };
  },

  async verify(ctx, p) {
    const made = lastRun.get(runKey(p));
    if (made !== undefined && made.length > 0) return checkMade(ctx, made);
    // No run of these params in this process (e.g. verify after a restart): the newest
    // backup of each requested kind and source must pass.
    const cfg = backupsConfig(ctx);
    const listing = await listBackups(cfg);
    const newest: Made[] = [];
    const missing: string[] = [];
    for (const it of items(p)) {
      const group = groupOf({ kind: it.kind, source: sourceOf(ctx, it) });
      const b = listing.backups.find((x) => x.group === group);
      if (!b) missing.push(describe(it));
      else newest.push({ kind: b.kind, file: b.name, path: b.path, identity: '', manifest: b.manifest, verdict: { status: 'retry', detail: '', at: 0 }, pruned: [] });
    }
    if (missing.length > 0) return { fixed: false, detail: `no backup of ${missing.join(', ')}` };
    return checkMade(ctx, newest);
  },
});
