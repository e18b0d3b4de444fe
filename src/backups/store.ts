import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, rm, stat, statfs } from 'node:fs/promises';
import { join, matchesGlob } from 'node:path';
import { BACKUP_KINDS, type BackupKindName, type BackupsConfig } from '../config.ts';
import { MANIFEST_MAX_BYTES, MANIFEST_SUFFIX, manifestPath, parseManifest, type Manifest } from './manifest.ts';
import { RESTORE_TESTS_FILE } from './restore-tests.ts';
import { identityOf } from './verify.ts';

// The backup directory as the backup actions see it: housekeeper's own backups (a file with
// a valid manifest that names it and its kind), how backup-run names new ones, and retention.
// Foreign backups (no manifest) are never touched; neither is a backup whose manifest is
// invalid, since nothing says whose it is.

export interface StoredBackup {
  kind: BackupKindName;
  name: string;
  path: string;
  manifest: Manifest;
  /** The file's identity when listed (device, inode, size, mtime): verifyBackup checks it is unchanged. */
  identity: string;
  /** The manifest's created_at, ms since epoch. */
  createdAt: number;
  /** Backups of the same kind and source form one retention group. */
  group: string;
}

export interface Listing {
  backups: StoredBackup[];
  /** Files with a manifest that is invalid, names another file or kind, or could not be read. */
  invalid: { kind: BackupKindName; name: string; path: string; problem: string }[];
}

/** The retention group of a manifest: kind plus where the data came from. */
export function groupOf(m: Pick<Manifest, 'kind' | 'source'>): string {
  const s = m.source;
  return [m.kind, s.type, s.target ?? '', s.database ?? '', s.path ?? ''].join('|');
}

/** Newest first by created_at, then by name (as the collector orders them). */
export function newestFirst(a: StoredBackup, b: StoredBackup): number {
  return b.createdAt - a.createdAt || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);
}

function configuredKinds(cfg: BackupsConfig): [BackupKindName, string][] {
  const out: [BackupKindName, string][] = [];
  for (const k of BACKUP_KINDS) {
    const c = cfg.kinds[k];
    if (c) out.push([k, c.pattern]);
  }
  return out;
}

async function readManifestFile(path: string): Promise<Manifest> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error('the manifest is not a regular file');
    if (st.size > MANIFEST_MAX_BYTES) throw new Error(`the manifest is larger than ${MANIFEST_MAX_BYTES} bytes`);
    return parseManifest(await fh.readFile('utf8'));
  } finally {
    await fh.close();
  }
}

/** Lists housekeeper backups of the given kinds (default: every configured kind). */
export async function listBackups(cfg: BackupsConfig, kinds?: readonly BackupKindName[]): Promise<Listing> {
  const wanted = configuredKinds(cfg).filter(([k]) => kinds === undefined || kinds.includes(k));
  const out: Listing = { backups: [], invalid: [] };
  const names = (await readdir(cfg.directory)).sort();
  const present = new Set(names);
  for (const name of names) {
    if (name.startsWith('.') || name.endsWith(MANIFEST_SUFFIX) || name === RESTORE_TESTS_FILE) continue;
    const matched = wanted.filter(([, pattern]) => matchesGlob(name, pattern));
    if (matched.length === 0 || !present.has(`${name}${MANIFEST_SUFFIX}`)) continue;
    const path = join(cfg.directory, name);
    let manifest: Manifest | undefined;
    let problem: string | undefined;
    let identity = '';
    try {
      const st = await stat(path, { bigint: true });
      if (!st.isFile()) throw new Error('not a regular file');
      identity = identityOf(st);
      manifest = await readManifestFile(manifestPath(path));
    } catch (err) {
      problem = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    for (const [kind] of matched) {
      if (manifest === undefined) out.invalid.push({ kind, name, path, problem: problem ?? 'unreadable' });
      else if (manifest.file !== name) out.invalid.push({ kind, name, path, problem: 'the manifest names another file' });
      else if (manifest.kind !== kind) out.invalid.push({ kind, name, path, problem: `the manifest says kind ${manifest.kind}` });
      else out.backups.push({ kind, name, path, manifest, identity, createdAt: Date.parse(manifest.created_at), group: groupOf(manifest) });
    }
  }
  out.backups.sort(newestFirst);
  return out;
}

/** "2026-01-02T020041.512Z": the time in a file name, sortable, without colons. */
export function stamp(at: Date): string {
  return at.toISOString().replace(/:/g, '');
}

/**
 * The name of a new backup: the kind's pattern with its first `*` replaced by
 * `<label>-<time>` (or `<time>`). The result must match that pattern and no other kind's
 * (a file counting for two kinds would fail verification for one of them), must not be
 * taken yet, and must not be hidden. Throws with what to change in config otherwise.
 */
export async function newBackupName(cfg: BackupsConfig, kind: BackupKindName, label: string | undefined, at: Date): Promise<string> {
  const pattern = cfg.kinds[kind]?.pattern;
  if (pattern === undefined) throw new Error(`backups.kinds.${kind} is not configured: backup-run names its files after that pattern`);
  if (!pattern.includes('*')) throw new Error(`backups.kinds.${kind}.pattern has no "*": backup-run puts the time where the first "*" is`);
  const base = label === undefined ? stamp(at) : `${label}-${stamp(at)}`;
  for (let n = 0; n < 100; n++) {
    const name = pattern.replace('*', n === 0 ? base : `${base}-${n}`);
    if (/[*?[\]{}]/.test(name) || name.startsWith('.') || !matchesGlob(name, pattern)) {
      throw new Error(`backups.kinds.${kind}.pattern: replacing its first "*" gives no plain file name that matches it; use a pattern like "app-*.dump"`);
    }
    const other = configuredKinds(cfg).find(([k, p]) => k !== kind && matchesGlob(name, p));
    if (other) throw new Error(`backup name ${name} would also match backups.kinds.${other[0]}.pattern: make the patterns disjoint`);
    const taken = await Promise.all([name, `${name}${MANIFEST_SUFFIX}`].map((f) => lstat(join(cfg.directory, f)).then(() => true, () => false)));
    if (!taken.includes(true)) return name;
  }
  throw new Error(`no free backup name for ${kind} at ${stamp(at)}`);
}

/** A hidden temp name in the backup directory for the data of `finalName` (ours: ".hk-" marker). */
export function tempNameFor(cfg: BackupsConfig, finalName: string): string {
  return join(cfg.directory, `.${finalName}.hk-${randomBytes(6).toString('hex')}.partial`);
}

/** Free bytes for an unprivileged writer in the backup directory's file system. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return Number(s.bavail) * Number(s.bsize);
}

export interface PruneResult {
  kept: string[];
  deleted: string[];
}

/**
 * Retention for one group (newest first): the newest backup always stays; of the others,
 * those beyond `keep` or older than max_age go. The data file is deleted before its
 * manifest, so a crash between the two leaves an orphan manifest (ignored, cleaned up
 * later), never a backup without one.
 */
export async function pruneGroup(cfg: BackupsConfig, group: readonly StoredBackup[], now: number): Promise<PruneResult> {
  const { keep, maxAgeMs } = cfg.retention;
  const out: PruneResult = { kept: [], deleted: [] };
  for (const [i, b] of group.entries()) {
    const old = maxAgeMs !== undefined && now - b.createdAt > maxAgeMs;
    if (i === 0 || (i < keep && !old)) {
      out.kept.push(b.name);
      continue;
    }
    await rm(b.path, { force: true });
    await rm(manifestPath(b.path), { force: true });
    out.deleted.push(b.name);
  }
  return out;
}

/** Leftovers older than this are removed by cleanupLeftovers; younger ones may be in use. */
export const LEFTOVER_AGE_MS = 60 * 60_000;

/**
 * Removes what crashed writers leave behind: our hidden temp files (".…hk-<hex>.partial",
 * publishBackup's ".….manifest.json.<hex>.tmp") and manifests whose data file is gone,
 * once they are older than LEFTOVER_AGE_MS. Other tools' files are never touched.
 */
export async function cleanupLeftovers(cfg: BackupsConfig, now: number): Promise<string[]> {
  const removed: string[] = [];
  const names = await readdir(cfg.directory);
  const present = new Set(names);
  const patterns = configuredKinds(cfg).map(([, p]) => p);
  for (const name of names) {
    const ours =
      /^\..+\.hk-[0-9a-f]{12}\.partial$/.test(name) ||
      /^\..+\.manifest\.json\.[0-9a-f]{12}\.tmp$/.test(name) ||
      (name.endsWith(MANIFEST_SUFFIX) &&
        !name.startsWith('.') &&
        !present.has(name.slice(0, -MANIFEST_SUFFIX.length)) &&
        patterns.some((p) => matchesGlob(name.slice(0, -MANIFEST_SUFFIX.length), p)));
    if (!ours) continue;
    const path = join(cfg.directory, name);
    try {
      const st = await lstat(path);
      if (!st.isFile() || now - st.mtimeMs < LEFTOVER_AGE_MS) continue;
      await rm(path, { force: true });
      removed.push(name);
    } catch {
      // gone meanwhile
    }
  }
  return removed;
}
