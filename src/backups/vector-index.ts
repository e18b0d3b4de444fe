import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { runArgv } from '../util/run-argv.ts';
import { identityOf } from './verify.ts';

// The vector_index backup: one tar archive (format "tar", pax) holding a FAISS index file and
// its sidecars, so one manifest and one SHA-256 cover them together. Sidecars are the
// regular files beside the index named "<index file>.<suffix>" (the maintenance record
// "<index>.housekeeper.json", a label → row id map, ...), except temporaries and rollback
// copies. The archive's members are plain base names; extract it into an empty directory.
//
// Consistency: writers replace these files by rename (src/faiss/sidecar.ts). tar opens each
// file and reads it; the set of files and each file's identity (device, inode, size, mtime)
// are taken before and after. When anything changed in between, a rebuild replaced the
// index mid-copy, and the copy is made again (a bounded number of times).

/** Not part of the index's state: temporaries, editor leftovers, rollback copies of a rebuild. */
const NOT_A_SIDECAR = /(\.(tmp|partial|swp|lock)([-.].*)?$)|(\.tmp-)|(~$)|(\.(prev|previous|old|bak|backup|rollback|orig)(\.|$))/i;

export const TAR = 'tar';
const ATTEMPTS = 5;

export interface IndexFiles {
  dir: string;
  index: string;
  sidecars: string[];
}

/** The index file and its sidecars (base names, sorted). Throws when the index file is missing. */
export async function indexFiles(indexPath: string): Promise<IndexFiles> {
  const dir = dirname(indexPath);
  const index = basename(indexPath);
  const st = await stat(indexPath).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`index file ${indexPath}: ${err.code ?? err.message}`);
  });
  if (!st.isFile()) throw new Error(`index file ${indexPath}: not a regular file`);
  const sidecars: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    if (!name.startsWith(`${index}.`) || NOT_A_SIDECAR.test(name.slice(index.length))) continue;
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (s?.isFile()) sidecars.push(name);
  }
  return { dir, index, sidecars };
}

async function identities(f: IndexFiles): Promise<string> {
  const parts: string[] = [];
  for (const name of [f.index, ...f.sidecars]) {
    const st = await stat(join(f.dir, name), { bigint: true }).catch(() => undefined);
    parts.push(`${name}=${st ? identityOf(st) : 'missing'}`);
  }
  return parts.join('\n');
}

const env = (): Record<string, string> => ({ PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' });

/**
 * Writes a consistent tar of the index and its sidecars to `archive` (overwritten). Returns
 * the files it holds and how many copies it took.
 */
export async function snapshotVectorIndex(
  indexPath: string,
  archive: string,
  o: { timeoutMs: number; signal: AbortSignal },
): Promise<{ files: string[]; attempts: number }> {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    o.signal.throwIfAborted();
    const files = await indexFiles(indexPath);
    const before = await identities(files);
    const names = [files.index, ...files.sidecars];
    o.signal.throwIfAborted(); // runArgv hears only aborts that come after the spawn
    const exit = await runArgv(
      [TAR, '--create', '--format=pax', '--dereference', `--file=${archive}`, `--directory=${files.dir}`, '--', ...names],
      { env: env(), cwd: undefined, timeoutMs: o.timeoutMs, signal: o.signal },
    );
    o.signal.throwIfAborted();
    const again = await indexFiles(indexPath).catch(() => undefined);
    const unchanged = again !== undefined && again.sidecars.join('\n') === files.sidecars.join('\n') && (await identities(again)) === before;
    if (!unchanged) continue; // replaced mid-copy: copy again
    if (exit.code !== 0) throw new Error(`tar exited ${exit.code ?? exit.signal}: ${lastLine(exit.output)}`);
    return { files: names, attempts: attempt };
  }
  throw new Error(`the index or its sidecars changed during each of ${ATTEMPTS} copies; try again after the rebuild`);
}

function lastLine(output: string): string {
  return (
    output
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('tar:') || l.startsWith('[housekeeper:'))
      .slice(-2)
      .join(' | ')
      .slice(0, 500) || 'no message'
  );
}

/** The member names of a vector_index backup. */
export async function listVectorIndexBackup(archive: string, signal?: AbortSignal): Promise<string[]> {
  const exit = await runArgv([TAR, '--list', `--file=${archive}`], { env: env(), cwd: undefined, timeoutMs: 120_000, ...(signal ? { signal } : {}) });
  if (exit.code !== 0) throw new Error(`tar --list exited ${exit.code ?? exit.signal}: ${lastLine(exit.output)}`);
  return exit.output.split('\n').filter((l) => l !== '');
}

/**
 * Extracts a vector_index backup into `dir` (an empty directory on the index's file
 * system, so that the caller can then rename the files into place). For faiss-restore.
 */
export async function extractVectorIndexBackup(archive: string, dir: string, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
  const exit = await runArgv([TAR, '--extract', '--no-same-owner', `--file=${archive}`, `--directory=${dir}`], {
    env: env(),
    cwd: undefined,
    timeoutMs: o.timeoutMs ?? 600_000,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  if (exit.code !== 0) throw new Error(`tar --extract exited ${exit.code ?? exit.signal}: ${lastLine(exit.output)}`);
}
