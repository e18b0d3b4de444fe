import { lstat, open, readdir, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join, matchesGlob } from 'node:path';
import { BACKUP_KINDS, type BackupKindName, type BackupsConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { MANIFEST_MAX_BYTES, MANIFEST_SUFFIX, manifestPath, parseManifest, type Manifest } from './manifest.ts';
import { RESTORE_TESTS_FILE, readRestoreTests, type RestoreTestSummary } from './restore-tests.ts';
import { findPgRestore, identityOf, verifyBackup, type Verdict, type VerifyReason } from './verify.ts';

// The backup directory as the collector sees it. Each scrape lists the directory and stats
// the files that match a kind's pattern (cheap), reads manifests and the restore-test log
// when their identity changed, and reports verification verdicts from a cache. Hashing and
// pg_restore run in a background pass that a scrape starts — at most one at a time and at
// most one start per verify interval — and never waits for.

/** The `target` label of every backup metric: there is one backup directory. */
export const BACKUPS_TARGET = 'backups';

export type Source = 'housekeeper' | 'foreign';
export const SOURCES: readonly Source[] = ['housekeeper', 'foreign'];

export type ErrorReason = VerifyReason | 'directory_unreadable' | 'restore_log_invalid';
export const ERROR_REASONS: readonly ErrorReason[] = [
  'directory_unreadable',
  'file_unreadable',
  'manifest_invalid',
  'size_mismatch',
  'checksum_mismatch',
  'dump_unreadable',
  'verify_incomplete',
  'restore_log_invalid',
];

export interface BackupFile {
  kind: BackupKindName;
  name: string;
  path: string;
  size: number;
  /** Seconds since epoch: the manifest's created_at, else the file's mtime. */
  createdAt: number;
  source: Source;
  identity: string;
  /** Verdict cache key: kind, the file's identity and its manifest's. */
  key: string;
  /** A valid manifest that matches the file's name, kind and size; only these are hashed. */
  manifest: Manifest | undefined;
}

export interface KindReport {
  kind: BackupKindName;
  count: Record<Source, number>;
  /** Newest backup of each source. */
  last: Record<Source, { at: number; size: number } | undefined>;
  /** Verification of the newest housekeeper backup: at is 0 while not yet judged. */
  verified: { success: boolean; at: number };
  /** created_at of the newest housekeeper backup that passed verification. */
  lastGood: number | undefined;
  restoreLastSuccess: number | undefined;
  restoreLatest: { at: number; success: boolean } | undefined;
}

export interface Report {
  readable: boolean;
  kinds: KindReport[];
  errors: Record<ErrorReason, number>;
}

type ManifestState =
  | { state: 'none' }
  | { state: 'ok'; identity: string; manifest: Manifest }
  | { state: 'bad'; identity: string; reason: 'manifest_invalid' | 'file_unreadable'; detail: string };

const nowSeconds = (): number => Date.now() / 1000;
const code = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

function newestFirst(a: BackupFile, b: BackupFile): number {
  return b.createdAt - a.createdAt || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);
}

export class BackupWatcher {
  readonly name = BACKUPS_TARGET;
  readonly config: BackupsConfig;
  private readonly pgRestore: string;
  private readonly manifests = new Map<string, { identity: string; result: ManifestState }>();
  private restoreCache: { identity: string; summary: RestoreTestSummary } | undefined;
  private readonly verdicts = new Map<string, Verdict>();
  /** Problems already logged (path + reason), so the log says each once, not every scrape. */
  private warned = new Set<string>();
  private running: Promise<void> | undefined;
  private lastPassStart = Number.NEGATIVE_INFINITY;

  constructor(config: BackupsConfig, pgRestore: string = findPgRestore()) {
    this.config = config;
    this.pgRestore = pgRestore;
  }

  private kinds(): [BackupKindName, string][] {
    const out: [BackupKindName, string][] = [];
    for (const k of BACKUP_KINDS) {
      const c = this.config.kinds[k];
      if (c) out.push([k, c.pattern]);
    }
    return out;
  }

  /** Lists and judges the directory from caches; starts a background pass when one is due. */
  async examine(log: Logger): Promise<Report> {
    const errors = Object.fromEntries(ERROR_REASONS.map((r) => [r, 0])) as Record<ErrorReason, number>;
    const problems = new Map<string, ErrorReason>();
    const seenWarnings = new Set<string>();
    const warn = (path: string, reason: ErrorReason, detail: string): void => {
      const key = `${path}\0${reason}\0${detail}`;
      seenWarnings.add(key);
      if (!this.warned.has(key)) log.warn({ collector: 'backups', file: path, reason, detail }, 'backup problem');
    };
    const dir = this.config.directory;
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (err) {
      errors.directory_unreadable = 1;
      warn(dir, 'directory_unreadable', code(err));
      this.warned = seenWarnings;
      return { readable: false, kinds: [], errors };
    }

    const kinds = this.kinds();
    const files: BackupFile[] = [];
    const seenManifests = new Set<string>();
    for (const name of names) {
      // Hidden names are writes in progress; sidecars and the restore log are ours.
      if (name.startsWith('.') || name.endsWith(MANIFEST_SUFFIX) || name === RESTORE_TESTS_FILE) continue;
      const matched = kinds.filter(([, pattern]) => matchesGlob(name, pattern)).map(([k]) => k);
      if (matched.length === 0) continue;
      const path = join(dir, name);
      let st;
      try {
        st = await stat(path, { bigint: true });
      } catch (err) {
        problems.set(path, 'file_unreadable');
        warn(path, 'file_unreadable', `cannot stat: ${code(err)}`);
        continue;
      }
      if (!st.isFile()) {
        problems.set(path, 'file_unreadable');
        warn(path, 'file_unreadable', 'not a regular file');
        continue;
      }
      const identity = identityOf(st);
      const size = Number(st.size);
      const mtime = Number(st.mtimeNs / 1_000_000n) / 1000;
      const mpath = manifestPath(path);
      seenManifests.add(mpath);
      const m = await this.readManifest(mpath);
      for (const kind of matched) {
        const mid = m.state === 'none' ? '-' : m.identity;
        const file: BackupFile = {
          kind,
          name,
          path,
          size,
          createdAt: m.state === 'ok' ? Date.parse(m.manifest.created_at) / 1000 : mtime,
          source: m.state === 'none' ? 'foreign' : 'housekeeper',
          identity,
          key: `${kind}|${identity}|${mid}`,
          manifest: undefined,
        };
        files.push(file);
        if (m.state === 'none') continue;
        // Checks that need no reading of the data are settled here, in the scrape.
        let quick: Verdict | undefined;
        if (m.state === 'bad') {
          quick = { status: m.reason === 'file_unreadable' ? 'retry' : 'failed', reason: m.reason, detail: m.detail, at: nowSeconds() };
        } else if (m.manifest.file !== name) {
          quick = { status: 'failed', reason: 'manifest_invalid', detail: 'the manifest names another file', at: nowSeconds() };
        } else if (m.manifest.kind !== kind) {
          quick = { status: 'failed', reason: 'manifest_invalid', detail: `the manifest says kind ${m.manifest.kind}`, at: nowSeconds() };
        } else if (m.manifest.size_bytes !== size) {
          quick = { status: 'failed', reason: 'size_mismatch', detail: `size ${size} bytes, manifest says ${m.manifest.size_bytes}`, at: nowSeconds() };
        } else {
          file.manifest = m.manifest;
        }
        if (quick) {
          const known = this.verdicts.get(file.key);
          if (known === undefined || known.status === 'retry') this.verdicts.set(file.key, quick);
        }
      }
    }
    for (const p of this.manifests.keys()) if (!seenManifests.has(p)) this.manifests.delete(p);
    const keys = new Set(files.map((f) => f.key));
    for (const k of this.verdicts.keys()) if (!keys.has(k)) this.verdicts.delete(k);

    for (const f of files) {
      const v = this.verdicts.get(f.key);
      if (v?.reason !== undefined) {
        problems.set(f.path, v.reason);
        warn(f.path, v.reason, v.detail);
      }
    }

    const restore = await this.readRestoreLog(join(dir, RESTORE_TESTS_FILE), (reason, detail) => {
      problems.set(join(dir, RESTORE_TESTS_FILE), reason);
      warn(join(dir, RESTORE_TESTS_FILE), reason, detail);
    });
    for (const reason of problems.values()) errors[reason]++;
    errors.restore_log_invalid += restore?.invalid ?? 0;
    if ((restore?.invalid ?? 0) > 0) warn(join(dir, RESTORE_TESTS_FILE), 'restore_log_invalid', `${restore?.invalid} invalid lines`);
    this.warned = seenWarnings;

    const report: Report = { readable: true, kinds: kinds.map(([k]) => this.kindReport(k, files, restore)), errors };
    this.kick(files, log);
    return report;
  }

  private kindReport(kind: BackupKindName, all: BackupFile[], restore: RestoreTestSummary | undefined): KindReport {
    const files = all.filter((f) => f.kind === kind).sort(newestFirst);
    const count = { housekeeper: 0, foreign: 0 };
    const last: KindReport['last'] = { housekeeper: undefined, foreign: undefined };
    for (const f of files) {
      count[f.source]++;
      last[f.source] ??= { at: f.createdAt, size: f.size };
    }
    const ours = files.filter((f) => f.source === 'housekeeper');
    const newest = ours[0] && this.verdicts.get(ours[0].key);
    const good = ours.find((f) => this.verdicts.get(f.key)?.status === 'ok');
    return {
      kind,
      count,
      last,
      verified: { success: newest?.status === 'ok', at: newest !== undefined && newest.status !== 'retry' ? newest.at : 0 },
      lastGood: good?.createdAt,
      restoreLastSuccess: restore?.lastSuccess.get(kind),
      restoreLatest: restore?.latest.get(kind),
    };
  }

  private async readManifest(path: string): Promise<ManifestState> {
    let st;
    try {
      // lstat first: a sidecar that is a dangling link is a broken manifest, not a foreign backup.
      await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.manifests.delete(path);
        return { state: 'none' };
      }
      return { state: 'bad', identity: '?', reason: 'file_unreadable', detail: `manifest: cannot stat: ${code(err)}` };
    }
    try {
      st = await stat(path, { bigint: true });
    } catch (err) {
      return { state: 'bad', identity: '?', reason: 'file_unreadable', detail: `manifest: cannot stat: ${code(err)}` };
    }
    const identity = identityOf(st);
    const cached = this.manifests.get(path);
    if (cached?.identity === identity) return cached.result;
    let result: ManifestState;
    if (!st.isFile()) {
      result = { state: 'bad', identity, reason: 'file_unreadable', detail: 'manifest: not a regular file' };
    } else if (st.size > BigInt(MANIFEST_MAX_BYTES)) {
      result = { state: 'bad', identity, reason: 'manifest_invalid', detail: `manifest: larger than ${MANIFEST_MAX_BYTES} bytes` };
    } else {
      try {
        const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
        let text: string;
        try {
          text = await fh.readFile('utf8');
        } finally {
          await fh.close();
        }
        try {
          result = { state: 'ok', identity, manifest: parseManifest(text) };
        } catch (err) {
          result = { state: 'bad', identity, reason: 'manifest_invalid', detail: `manifest: ${(err as Error).message}` };
        }
      } catch (err) {
        result = { state: 'bad', identity, reason: 'file_unreadable', detail: `manifest: cannot read: ${code(err)}` };
      }
    }
    // An unreadable manifest is tried again next scrape; a parsed or invalid one is kept.
    if (result.state === 'bad' && result.reason === 'file_unreadable') this.manifests.delete(path);
    else this.manifests.set(path, { identity, result });
    return result;
  }

  private async readRestoreLog(
    path: string,
    problem: (reason: ErrorReason, detail: string) => void,
  ): Promise<RestoreTestSummary | undefined> {
    let identity: string;
    try {
      identity = identityOf(await stat(path, { bigint: true }));
    } catch (err) {
      this.restoreCache = undefined;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') problem('file_unreadable', `cannot stat: ${code(err)}`);
      return undefined;
    }
    if (this.restoreCache?.identity === identity) return this.restoreCache.summary;
    try {
      const summary = await readRestoreTests(path);
      this.restoreCache = { identity, summary };
      return summary;
    } catch (err) {
      this.restoreCache = undefined;
      problem('file_unreadable', `cannot read: ${code(err)}`);
      return undefined;
    }
  }

  /**
   * The housekeeper backups that need verifying, in order: per kind, newest first, down to
   * the first one that passed; skipping those judged already and retries not yet due. Lazy,
   * and it reads the verdicts as it goes, so a pass stops at a kind's first good backup.
   */
  private *due(files: BackupFile[]): Generator<BackupFile> {
    const retryAfter = this.config.verifyIntervalMs / 1000;
    for (const [kind] of this.kinds()) {
      const ours = files.filter((f) => f.kind === kind && f.source === 'housekeeper').sort(newestFirst);
      for (const f of ours) {
        const v = this.verdicts.get(f.key);
        if (v?.status === 'ok') break;
        if (v?.status === 'failed' || f.manifest === undefined) continue;
        if (v?.status === 'retry' && nowSeconds() - v.at < retryAfter) continue;
        yield f;
        if (this.verdicts.get(f.key)?.status === 'ok') break;
      }
    }
  }

  /** Starts a background pass if none is running, none started within the interval, and there is work. */
  private kick(files: BackupFile[], log: Logger): void {
    if (this.running !== undefined || performance.now() - this.lastPassStart < this.config.verifyIntervalMs) return;
    if (this.due(files).next().done === true) return;
    this.lastPassStart = performance.now();
    this.running = this.pass(files, log)
      .catch((err: unknown) => log.error({ collector: 'backups', err }, 'backup verification pass failed'))
      .finally(() => {
        this.running = undefined;
      });
  }

  /** Verifies one file at a time, so a pass reads one backup from disk at a time. */
  private async pass(files: BackupFile[], log: Logger): Promise<void> {
    for (const f of this.due(files)) {
      const v = await verifyBackup(f.path, f.identity, f.manifest as Manifest, { pgRestore: this.pgRestore });
      this.verdicts.set(f.key, v);
      const fields = { collector: 'backups', kind: f.kind, file: f.path, reason: v.reason, detail: v.detail };
      // Failures are logged by the next scrape's examination, once per file and reason.
      if (v.status === 'ok') log.info(fields, 'backup verified');
      else log.debug(fields, v.status === 'failed' ? 'backup failed verification' : 'backup verification incomplete; will retry');
    }
  }
}
