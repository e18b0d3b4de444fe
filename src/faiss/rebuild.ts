// The service's side of FAISS index maintenance: runs a build in a child process
// (rebuild-child.ts), publishes a finished generation atomically with the previous one kept
// for rollback, and repairs the one state a crash between two renames can leave.
//
// Why a child process (not the event loop, not a worker thread): faiss-node's calls are
// synchronous and take minutes on a large index, and a FAISS C++ exception outside
// read/fromBuffer/fromFactory aborts the whole process (scripts/faiss-shim/NOTES.md): in a
// thread it would take the service down. A child dies alone, gives its memory back when it
// exits, can be killed when the action is aborted, and runs under SCHED_IDLE at nice 19, so
// scrapes and webhooks never wait behind it for a CPU.
//
// Files, for an index at <dir>/<name>:
//   <name>                 the live index: only ever replaced by rename(2)
//   <name>.ids             its label → row id map (src/faiss/ids.ts)
//   <name>.prev, <name>.prev.ids   the generation before the last publish (rollback)
//   <name>.housekeeper.json        the maintenance sidecar (sidecar.ts)
//   .<name>.hk-<pid>-<hex>.{index,ids,vectors}.tmp   a build in progress (hidden; removed on
//       failure or kill; left only if the service itself dies, then removed by a later run)
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, link, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { BuildJob, BuildMessage, BuildStage, BuildStats } from './rebuild-protocol.ts';
import { fileSha256, idsMatch, idsPath, prevIdsPath, prevPath } from './ids.ts';

const CHILD = new URL(import.meta.url.endsWith('.ts') ? './rebuild-child.ts' : './rebuild-child.js', import.meta.url);

/** A build in progress in this process (tests and the benchmark read these). */
export interface BuildInProgress {
  index: string;
  pid: number | undefined;
  stage: BuildStage | 'starting';
  rows: number;
}

const inProgress = new Set<BuildInProgress>();

export function buildsInProgress(): BuildInProgress[] {
  return [...inProgress].map((b) => ({ ...b }));
}

/** Temporary names for one build, hidden, in the index's own directory (same file system: rename works). */
export function tempFiles(indexPath: string): BuildJob['files'] {
  const stem = join(dirname(indexPath), `.${basename(indexPath)}.hk-${process.pid}-${randomBytes(4).toString('hex')}`);
  return { index: `${stem}.index.tmp`, ids: `${stem}.ids.tmp`, vectors: `${stem}.vectors.tmp` };
}

const TEMP_RE = (name: string): RegExp => new RegExp(`^\\.${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.hk-(\\d+)-[0-9a-f]+\\.(index|ids|vectors|restore)\\.tmp$`);

/** Leftovers of builds that are not running: from a dead process, or older than a day. */
export async function removeLeftovers(indexPath: string, now = Date.now()): Promise<string[]> {
  const dir = dirname(indexPath);
  const re = TEMP_RE(basename(indexPath));
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return removed;
  }
  const ours = new Set<string>();
  for (const b of inProgress) if (b.index === indexPath) ours.add(String(process.pid));
  for (const name of names) {
    const m = re.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = pid === process.pid ? ours.size > 0 : true;
    if (pid !== process.pid) {
      try {
        process.kill(pid, 0);
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (!st) continue;
    if (alive && now - st.mtimeMs < 24 * 3600_000) continue;
    await rm(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

export async function removeFiles(files: readonly string[]): Promise<void> {
  await Promise.all(files.map((f) => rm(f, { recursive: true, force: true })));
}

/**
 * How the child is started: under SCHED_IDLE (`chrt --idle 0`) when available, so it gets
 * only CPU time nobody else wants, as the collector's check child does.
 */
function launcher(): { execPath: string; prefix: string[] } {
  const chrt = '/usr/bin/chrt';
  if (process.platform === 'linux' && existsSync(chrt)) return { execPath: chrt, prefix: ['--idle', '0', process.execPath] };
  return { execPath: process.execPath, prefix: [] };
}

/**
 * The child's environment: nothing of the service's (secrets may be there), but FAISS and
 * BLAS threads for every CPU (SCHED_IDLE keeps them out of the service's way), passive
 * OpenMP waits, OPENBLAS_CORETYPE as the operator set it, and malloc returning large blocks
 * to the system when freed (faiss-node copies each batch into a fresh buffer).
 */
function childEnv(): NodeJS.ProcessEnv {
  const threads = String(Math.max(1, availableParallelism()));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    OMP_NUM_THREADS: threads,
    OPENBLAS_NUM_THREADS: threads,
    OMP_WAIT_POLICY: 'PASSIVE',
    MALLOC_MMAP_THRESHOLD_: String(1 << 20),
  };
  const coretype = process.env['OPENBLAS_CORETYPE'];
  if (coretype) env['OPENBLAS_CORETYPE'] = coretype;
  return env;
}

/** The C++ runtime's last words ("what(): ..."), if it printed any. */
function abortReason(stderr: string): string | undefined {
  const what = /what\(\):\s*(.+)/.exec(stderr)?.[1];
  const line = what ?? stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('WARNING clustering')).pop();
  return line?.trim().slice(0, 300);
}

/**
 * Builds a new generation into job.files in a child process. Resolves with its stats; rejects
 * with the reason when the build failed, the child died, or the signal aborted (the child is
 * then killed). Never publishes: the temporary files are the caller's to publish or remove.
 */
export function runBuild(indexPath: string, job: BuildJob, signal: AbortSignal): Promise<BuildStats> {
  return new Promise<BuildStats>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      return;
    }
    const entry: BuildInProgress = { index: indexPath, pid: undefined, stage: 'starting', rows: 0 };
    let child: ChildProcess;
    try {
      const { execPath, prefix } = launcher();
      child = fork(CHILD, [], {
        execPath,
        // Never the parent's flags (a test runner's, an inspector's); gc to free FAISS memory between steps.
        // A young generation of at most 8 MB: the build churns through every vector as text and
        // as numbers, and V8 otherwise grows it (and keeps it) by a hundred MB or more.
        execArgv: [...prefix, '--expose-gc', '--max-semi-space-size=8'],
        env: childEnv(),
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        serialization: 'json',
      });
    } catch (err) {
      reject(new Error(`cannot start the build process: ${(err as Error).message}`));
      return;
    }
    entry.pid = child.pid;
    inProgress.add(entry);
    let stderrTail = '';
    let outcome: { stats: BuildStats } | { failed: string } | undefined;
    let settled = false;
    const finish = (err: Error | undefined, stats?: BuildStats): void => {
      if (settled) return;
      settled = true;
      inProgress.delete(entry);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(stats as BuildStats);
    };
    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-4096);
    });
    child.on('message', (raw: unknown) => {
      const msg = raw as BuildMessage;
      if (msg.kind === 'ready') {
        try {
          child.send(job);
        } catch {
          // gone already: 'close' reports it
        }
      } else if (msg.kind === 'progress') {
        entry.stage = msg.stage;
        entry.rows = msg.rows;
      } else if (msg.kind === 'done') {
        outcome = { stats: msg.stats };
      } else if (msg.kind === 'failed') {
        outcome = { failed: msg.message };
      }
    });
    child.on('error', (err) => {
      child.kill('SIGKILL');
      finish(new Error(`build process error: ${err.message}`));
    });
    // 'close', not 'exit': by then every IPC message and the stderr tail have arrived.
    child.on('close', (code, sig) => {
      if (signal.aborted) {
        finish(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      } else if (outcome && 'stats' in outcome) {
        finish(undefined, outcome.stats);
      } else if (outcome) {
        finish(new Error(outcome.failed));
      } else {
        const said = abortReason(stderrTail);
        finish(new Error(`build process ${sig ? `killed by ${sig}` : `exited with code ${code}`} while ${entry.stage}${said ? `: ${said}` : ''}`));
      }
    });
  });
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Makes `to` a copy of `from` atomically: a hard link (no data copied) under a temporary
 * name, renamed over `to`; a byte copy where links are not possible.
 */
async function keepCopy(from: string, to: string): Promise<void> {
  const tmp = join(dirname(to), `.${basename(to)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    try {
      await link(from, tmp);
    } catch {
      await copyFile(from, tmp);
      const fh = await open(tmp, 'r+');
      await fh.sync().finally(() => fh.close());
    }
    await rename(tmp, to);
    // When `to` already is a link to `from` (after reconcileIds), rename(2) succeeds without
    // doing anything and tmp is still there.
    await rm(tmp, { force: true });
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** A finished generation to publish: the new index file, and its id map (or none). */
export interface Generation {
  index: string;
  ids: string | undefined;
}

/**
 * Publishes a generation over the live index:
 *   1. the live index and map become <name>.prev and <name>.prev.ids (hard links; the live
 *      files stay in place), 2. the new map is renamed over <name>.ids, 3. the new index over
 *   <name>, 4. the directory is fsynced.
 * The live index path changes only by the rename in step 3, so a crash anywhere leaves
 * either the old or the new index there, whole. A crash between 2 and 3 leaves the old
 * index with the new map; the map's header names the index it belongs to, and
 * reconcileIds() (run before every maintenance action) puts <name>.prev.ids back.
 */
export async function publishGeneration(indexPath: string, gen: Generation): Promise<{ previousKept: boolean }> {
  const ids = idsPath(indexPath);
  const hadLive = await exists(indexPath);
  if (hadLive) {
    await keepCopy(indexPath, prevPath(indexPath));
    if (await exists(ids)) await keepCopy(ids, prevIdsPath(indexPath));
    else await rm(prevIdsPath(indexPath), { force: true });
  }
  if (gen.ids !== undefined) await rename(gen.ids, ids);
  await rename(gen.index, indexPath);
  // A map that describes no longer the live index goes (it stays in .prev.ids).
  if (gen.ids === undefined) await rm(ids, { force: true });
  await fsyncDir(dirname(indexPath));
  return { previousKept: hadLive };
}

/**
 * Repairs the state a crash between publishGeneration's renames can leave: the live map
 * belongs to another generation while <name>.prev.ids belongs to the live index. Returns
 * what it did, or undefined when nothing needed doing.
 */
export async function reconcileIds(indexPath: string): Promise<string | undefined> {
  const ids = idsPath(indexPath);
  const prevIds = prevIdsPath(indexPath);
  if (!(await exists(indexPath)) || !(await exists(ids)) || !(await exists(prevIds))) return undefined;
  const live = await fileSha256(indexPath);
  if ((await idsMatch(ids, live)).ok) return undefined;
  if (!(await idsMatch(prevIds, live)).ok) return undefined;
  await keepCopy(prevIds, ids);
  await fsyncDir(dirname(indexPath));
  return `restored ${basename(ids)} from ${basename(prevIds)}: the live map belonged to an unpublished generation`;
}
