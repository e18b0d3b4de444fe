// Runs one check of a FAISS index file off the service's event loop, in a child process.
//
// Why a child process and not a worker thread (the issue says "worker thread"): faiss-node
// lets a FAISS C++ exception escape N-API on most calls, which calls std::terminate and
// aborts the whole process (scripts/faiss-shim/NOTES.md). A worker thread shares the
// process, so one bad file or one unguarded call would take the exporter down with it; a
// child process dies alone and the service reports the check as failed. A process also gives
// the memory of a loaded index (hundreds of MB for 1M vectors) back to the system when it
// exits, runs at the lowest CPU priority with bounded FAISS/BLAS threads, and can be killed
// on a deadline, none of which a thread allows. The cost, about 0.1 s to start Node and load
// faiss-node, is nothing next to a check interval of minutes.
//
// At most one check runs at a time in the whole service (a module-wide queue), so two large
// indexes are never loaded at once. faiss-optimize's measurement (runOptimize) is a job of
// the same child and waits in the same queue.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCRATCH_PREFIX, type CheckFacts, type CheckJob, type ChildMessage, type OptimizeJob, type OptimizeReply } from './protocol.ts';

// The sources run as .ts in tests and as the .js build in production (npm start, Docker).
const CHILD = new URL(import.meta.url.endsWith('.ts') ? './check-child.ts' : './check-child.js', import.meta.url);

export interface CheckRequest {
  path: string;
  recallSample: number;
  /** The child is killed when the check takes longer. */
  timeoutMs: number;
  k?: number;
  probes?: number;
  seed?: number;
}

export interface CheckOutcome {
  /** Epoch milliseconds. */
  startedAt: number;
  finishedAt: number;
  durationSeconds: number;
  /** The check ran to its end (the child reported); false on a crash, a timeout or a spawn failure. */
  completed: boolean;
  /** Facts from the child; `loadable` is undefined when the check failed before the file was read. */
  facts: CheckFacts | undefined;
  loadable: boolean | undefined;
  /** Why the check did not complete or the file did not load, for the log (never a label). */
  problem: string | undefined;
  /** Stopped by stopChecks() (shutdown): it says nothing about the index. */
  cancelled?: boolean;
}

let queue: Promise<unknown> = Promise.resolve();
let running = 0;
/** Bumped by stopChecks(): checks queued or running under an older generation are cancelled. */
let generation = 0;
const live = new Set<{ child: ChildProcess; exited: Promise<void> }>();

function cancelled(): CheckOutcome {
  const now = Date.now();
  return { startedAt: now, finishedAt: now, durationSeconds: 0, completed: false, facts: undefined, loadable: undefined, problem: 'cancelled: service stopping', cancelled: true };
}

/**
 * Kills the check in progress and cancels the queued ones (the collector's close(), at
 * shutdown). Process-wide: one service runs per process. Checks requested afterwards run.
 */
export async function stopChecks(): Promise<void> {
  generation++;
  await Promise.all(
    [...live].map((l) => {
      l.child.kill('SIGKILL');
      return l.exited;
    }),
  );
}

/** Checks in progress in this process (0 or 1); the benchmark and tests read it. */
export function checksRunning(): number {
  return running;
}

/** Runs `job` in a child when no other check is running. */
function enqueue<T>(job: (gen: number) => Promise<T>, whenCancelled: () => T): Promise<T> {
  const gen = generation;
  const next = queue.then(() => (gen === generation ? job(gen) : whenCancelled()));
  queue = next.catch(() => undefined);
  return next;
}

/** Runs the check when no other check is running. Never rejects. */
export function runCheck(req: CheckRequest): Promise<CheckOutcome> {
  const job: CheckJob = {
    kind: 'check',
    path: req.path,
    k: req.k ?? 10,
    recallSample: req.recallSample,
    probes: req.probes ?? 20,
    seed: req.seed ?? DEFAULT_SEED,
    chunkBytes: CHUNK_BYTES,
  };
  return enqueue(async (gen) => {
    const end = await runNow(job, req.timeoutMs, undefined, gen, (m) => (m.kind === 'result' ? m.facts : undefined));
    const { startedAt, finishedAt, durationSeconds } = end;
    if (end.kind === 'cancelled') return { ...cancelled(), startedAt, finishedAt, durationSeconds };
    if (end.kind === 'failed') return { startedAt, finishedAt, durationSeconds, completed: false, facts: undefined, loadable: end.loadable, problem: end.problem };
    const facts = end.reply;
    return { startedAt, finishedAt, durationSeconds, completed: facts.incomplete === undefined, facts, loadable: facts.loadable, problem: facts.error ?? facts.incomplete };
  }, cancelled);
}

/** The sample the collector's checks draw: an optimize measures on the same one. */
const DEFAULT_SEED = 0x5eed;
/** Bytes of stored vectors per chunk of the exact search. */
const CHUNK_BYTES = 32 * 1024 * 1024;

export interface OptimizeRequest {
  /** A copy of the live index, beside it: the child writes the nprobe it chooses into this file. */
  path: string;
  recallSample: number;
  target: number;
  floor: number;
  /** Kills the child (and rejects) when it fires, also while the job waits in the queue. */
  signal: AbortSignal;
  timeoutMs: number;
}

/**
 * faiss-optimize's measurement (OptimizeJob in protocol.ts), in the check child, on the
 * same sample as the collector's checks. Resolves with the child's reply, or with
 * { ok: false } and why when the child failed; rejects only when the signal fired.
 */
export function runOptimize(req: OptimizeRequest): Promise<OptimizeReply> {
  const { signal } = req;
  const job: OptimizeJob = { kind: 'optimize', path: req.path, k: 10, recallSample: req.recallSample, target: req.target, floor: req.floor, seed: DEFAULT_SEED, chunkBytes: CHUNK_BYTES };
  const aborted = (): Error => (signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  const queued = enqueue(
    async (gen): Promise<OptimizeReply> => {
      if (signal.aborted) throw aborted();
      const end = await runNow(job, req.timeoutMs, signal, gen, (m) => (m.kind === 'optimized' ? m.reply : undefined));
      if (signal.aborted) throw aborted();
      if (end.kind === 'cancelled') return { ok: false, loadable: undefined, error: 'cancelled: service stopping' };
      if (end.kind === 'failed') return { ok: false, loadable: end.loadable, error: end.problem };
      return end.reply;
    },
    (): OptimizeReply => ({ ok: false, loadable: undefined, error: 'cancelled: service stopping' }),
  );
  // An abort while a check ahead still runs does not wait for it.
  return new Promise<OptimizeReply>((resolve, reject) => {
    const onAbort = (): void => reject(aborted());
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    queued.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Where the child writes its chunk files (one at a time, ≤ 32 MiB): RAM-backed /dev/shm when
 * it has room, so checks do not write to disk, else the system's temporary directory.
 */
function scratchBase(): string {
  try {
    const s = statfsSync('/dev/shm');
    if (s.bavail * s.bsize > 256 * 1024 * 1024) return '/dev/shm';
  } catch {
    // no /dev/shm
  }
  return tmpdir();
}

/**
 * Removes scratch directories of check processes that are gone (killed together with a
 * service that was killed itself). Only ours: the prefix and a pid that no longer exists.
 */
function sweepScratch(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(SCRATCH_PREFIX)) continue;
    const pid = Number(name.slice(SCRATCH_PREFIX.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      process.kill(pid, 0);
      continue; // alive (or someone else's process now): leave it
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    rmSync(join(base, name), { recursive: true, force: true });
  }
}

/**
 * How the child is started: under SCHED_IDLE (`chrt --idle 0`, util-linux, in every Debian)
 * when available, so it only gets CPU time no one else wants, and the service's scrapes never
 * wait behind it; otherwise plain Node (the child still lowers its own nice value).
 */
function launcher(): { execPath: string; prefix: string[] } {
  const chrt = '/usr/bin/chrt';
  if (process.platform === 'linux' && existsSync(chrt)) return { execPath: chrt, prefix: ['--idle', '0', process.execPath] };
  return { execPath: process.execPath, prefix: [] };
}

/** FAISS (OpenMP) and OpenBLAS threads for the child: half the CPUs, so the service keeps the rest. */
function childThreads(): string {
  return String(Math.max(1, Math.floor(availableParallelism() / 2)));
}

/** How a child's job ended: its reply, cancelled by stopChecks(), or failed (crash, kill, timeout, spawn). */
type ChildEnd<R> = { startedAt: number; finishedAt: number; durationSeconds: number } & (
  | { kind: 'replied'; reply: R }
  | { kind: 'cancelled' }
  | { kind: 'failed'; problem: string; loadable: boolean | undefined }
);
type Ending<R> = { kind: 'replied'; reply: R } | { kind: 'cancelled' } | { kind: 'failed'; problem: string; loadable: boolean | undefined };

/** Runs one job in a child; `replyOf` picks the job's reply from the child's messages. Never rejects. */
function runNow<R>(job: CheckJob | OptimizeJob, timeoutMs: number, signal: AbortSignal | undefined, gen: number, replyOf: (msg: ChildMessage) => R | undefined): Promise<ChildEnd<R>> {
  const startedAt = Date.now();
  const t0 = performance.now();
  return new Promise<ChildEnd<R>>((resolve) => {
    running++;
    let stage: 'starting' | 'ready' | 'loaded' = 'starting';
    let reply: R | undefined;
    let stderrTail = '';
    let settled = false;
    let timedOut = false;
    const base = scratchBase();
    sweepScratch(base);
    let scratchDir: string | undefined;
    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    const finish = (o: Ending<R>): void => {
      if (settled) return;
      settled = true;
      running--;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // The child removes its own directory as it exits; not when it was killed.
      if (scratchDir !== undefined) rmSync(scratchDir, { recursive: true, force: true });
      resolve({ ...o, startedAt, finishedAt: Date.now(), durationSeconds: (performance.now() - t0) / 1000 });
    };
    const threads = childThreads();
    let child: ReturnType<typeof fork>;
    try {
      const { execPath, prefix } = launcher();
      child = fork(CHILD, [base], {
        execPath,
        // Never the parent's flags (a test runner's or an inspector's); gc for the chunk loop.
        execArgv: [...prefix, '--expose-gc'],
        // Only what the child needs: nothing of the service's environment (secrets may be there).
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', OMP_NUM_THREADS: threads, OPENBLAS_NUM_THREADS: threads, OMP_WAIT_POLICY: 'PASSIVE' },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        serialization: 'json',
      });
    } catch (err) {
      running--;
      settled = true;
      resolve({ startedAt, finishedAt: Date.now(), durationSeconds: 0, kind: 'failed', loadable: undefined, problem: `cannot start the check process: ${(err as Error).message}` });
      return;
    }
    const entry = { child, exited: new Promise<void>((resolve) => child.once('close', () => resolve())) };
    live.add(entry);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    timer.unref();
    if (signal?.aborted) child.kill('SIGKILL');
    else signal?.addEventListener('abort', onAbort, { once: true });
    // The service must be able to exit while a check runs; the child exits when the IPC
    // channel closes (check-child.ts).
    child.unref();
    child.channel?.unref();
    child.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-4096);
    });
    (child.stderr as { unref?: () => void } | null)?.unref?.();
    child.on('message', (raw: unknown) => {
      const msg = raw as ChildMessage;
      if (msg.kind === 'ready') {
        stage = 'ready';
        scratchDir = msg.scratch;
        try {
          child.send(job);
        } catch {
          // the child is gone already: its exit handler reports it
        }
      } else if (msg.kind === 'loaded') {
        stage = 'loaded';
      } else {
        reply = replyOf(msg) ?? reply;
      }
    });
    child.on('error', (err) => {
      // A spawn failure may never be followed by 'close': do not let stopChecks() wait for it.
      live.delete(entry);
      child.kill('SIGKILL');
      finish({ kind: 'failed', loadable: undefined, problem: `check process error: ${err.message}` });
    });
    // 'close', not 'exit': by then the IPC messages and the stderr tail have all arrived.
    child.on('close', (code, sig) => {
      live.delete(entry);
      if (reply !== undefined) {
        finish({ kind: 'replied', reply });
        return;
      }
      if (gen !== generation) {
        finish({ kind: 'cancelled' });
        return;
      }
      const how = timedOut ? `timed out after ${timeoutMs} ms` : signal?.aborted ? 'stopped (aborted)' : sig ? `killed by ${sig}` : `exited with code ${code}`;
      const said = abortReason(stderrTail);
      const problem = `check process ${how} ${stage === 'starting' ? 'before faiss-node loaded' : stage === 'ready' ? 'while FAISS read the file' : 'after the file loaded'}${said ? `: ${said}` : ''}`;
      // A crash inside FAISS's read means the application would crash loading this file too:
      // the file is not loadable. A timeout or an abort says nothing about the file.
      const loadable = stage === 'loaded' ? true : stage === 'ready' && !timedOut && !signal?.aborted ? false : undefined;
      finish({ kind: 'failed', loadable, problem });
    });
  });
}

/** The C++ runtime's last words ("what(): ..."), if it printed any. */
function abortReason(stderr: string): string | undefined {
  const what = /what\(\):\s*(.+)/.exec(stderr)?.[1];
  const line = what ?? stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('WARNING clustering')).pop();
  return line?.trim().slice(0, 300);
}
