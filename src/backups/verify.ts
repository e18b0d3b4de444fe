import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from './hash.ts';
import { PG_DUMP_CUSTOM, type Manifest } from './manifest.ts';

// Verification of one backup made by housekeeper: size and SHA-256 against its manifest,
// and for a Postgres custom-format dump, `pg_restore --list` (reads the archive's header and
// table of contents, without a database). Shared by the collector's background verifier and
// the backup-verify action. Runs commands as argv arrays with a timeout, never a shell.

/** Why a backup is not (yet) verified; these are the `reason` values of backup_errors. */
export type VerifyReason =
  | 'file_unreadable'
  | 'manifest_invalid'
  | 'size_mismatch'
  | 'checksum_mismatch'
  | 'dump_unreadable'
  | 'verify_incomplete';

/**
 * ok and failed are final for the file as it is (kept until its identity changes); retry
 * means the check could not finish (I/O error, timeout, tool missing, the file changed
 * meanwhile) and is tried again after the verify interval.
 */
export interface Verdict {
  status: 'ok' | 'failed' | 'retry';
  reason?: VerifyReason;
  /** Short explanation for the log; never file content. */
  detail: string;
  /** When the verdict was reached, seconds since epoch. */
  at: number;
}

export const PG_RESTORE_TIMEOUT_MS = 120_000;

/**
 * pg_restore to use: $HOUSEKEEPER_PG_BIN/pg_restore, else the newest Debian
 * /usr/lib/postgresql/N/bin/pg_restore (an archive needs a pg_restore at least as new as
 * the pg_dump that wrote it), else `pg_restore` from PATH.
 */
export function findPgRestore(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['HOUSEKEEPER_PG_BIN'];
  if (fromEnv) return join(fromEnv, 'pg_restore');
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const p = `/usr/lib/postgresql/${v}/bin/pg_restore`;
      if (existsSync(p)) return p;
    }
  } catch {
    // not Debian's layout
  }
  return 'pg_restore';
}

export type PgRestoreResult = { ok: true } | { ok: false; transient: boolean; detail: string };

/**
 * `pg_restore --list FILE`: exit 0 means the archive's header and table of contents read
 * back. Its listing goes to /dev/null; the last lines of stderr explain a failure. A
 * timeout, a missing binary, or an archive newer than this pg_restore is transient (the
 * fault is ours, not the dump's).
 */
export function pgRestoreList(file: string, o: { bin?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<PgRestoreResult> {
  const bin = o.bin ?? findPgRestore();
  const timeoutMs = o.timeoutMs ?? PG_RESTORE_TIMEOUT_MS;
  return new Promise((resolve) => {
    let stderr = '';
    let settled = false;
    const done = (r: PgRestoreResult): void => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    // `--` ends options, so a file name starting with "-" cannot become one.
    const child = spawn(bin, ['--list', '--', file], {
      stdio: ['ignore', 'ignore', 'pipe'],
      // No PG* variables: this reads a file and must not connect anywhere.
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' },
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      ...(o.signal ? { signal: o.signal } : {}),
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-2000);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      done({ ok: false, transient: true, detail: `cannot run pg_restore: ${err.code ?? err.message}` });
    });
    child.once('close', (code, signal) => {
      if (code === 0) return done({ ok: true });
      const last = stderr.trim().split('\n').slice(-2).join(' | ');
      if (signal !== null) return done({ ok: false, transient: true, detail: `pg_restore killed by ${signal} (timeout ${timeoutMs / 1000} s?)` });
      const transient = /unsupported version/i.test(stderr);
      done({ ok: false, transient, detail: `pg_restore --list exited with code ${code}: ${last}` });
    });
  });
}

/** The identity a verdict is cached under: the file is the same while all four are. */
export function identityOf(st: { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint }): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
}

const now = (): number => Date.now() / 1000;

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

/**
 * Verifies one backup against its (already validated) manifest. `identity` is the file's
 * identity when it was listed: a file replaced or still growing is not judged. Never throws.
 */
export async function verifyBackup(
  path: string,
  identity: string,
  manifest: Manifest,
  o: { pgRestore?: string; pgRestoreTimeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Verdict> {
  const changed = (): Verdict => ({ status: 'retry', reason: 'verify_incomplete', detail: 'the file changed while it was verified', at: now() });
  try {
    const before = await stat(path, { bigint: true });
    if (identityOf(before) !== identity) return changed();
    if (Number(before.size) !== manifest.size_bytes) {
      return { status: 'failed', reason: 'size_mismatch', detail: `size ${before.size} bytes, manifest says ${manifest.size_bytes}`, at: now() };
    }
    let digest: { sha256: string; bytes: number };
    try {
      digest = await sha256File(path, o.signal);
    } catch (err) {
      return { status: 'retry', reason: 'file_unreadable', detail: `cannot read: ${errCode(err)}`, at: now() };
    }
    const after = await stat(path, { bigint: true });
    if (identityOf(after) !== identity || digest.bytes !== manifest.size_bytes) return changed();
    if (digest.sha256 !== manifest.sha256) {
      return { status: 'failed', reason: 'checksum_mismatch', detail: 'SHA-256 of the file differs from the manifest', at: now() };
    }
    if (manifest.format === PG_DUMP_CUSTOM) {
      const r = await pgRestoreList(path, {
        ...(o.pgRestore ? { bin: o.pgRestore } : {}),
        ...(o.pgRestoreTimeoutMs ? { timeoutMs: o.pgRestoreTimeoutMs } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      if (!r.ok) {
        return r.transient
          ? { status: 'retry', reason: 'verify_incomplete', detail: r.detail, at: now() }
          : { status: 'failed', reason: 'dump_unreadable', detail: r.detail, at: now() };
      }
    }
    return { status: 'ok', detail: manifest.format === PG_DUMP_CUSTOM ? 'checksum and pg_restore --list' : 'checksum', at: now() };
  } catch (err) {
    // stat failed: gone or unreadable since it was listed.
    return { status: 'retry', reason: 'file_unreadable', detail: `cannot stat: ${errCode(err)}`, at: now() };
  }
}
