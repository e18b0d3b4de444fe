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
// indexes are never loaded at once.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CheckFacts, CheckJob, ChildMessage } from './protocol.ts';

const CHILD = new URL('./check-child.ts', import.meta.url);

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
}

let queue: Promise<unknown> = Promise.resolve();
let running = 0;

/** Checks in progress in this process (0 or 1); the benchmark and tests read it. */
export function checksRunning(): number {
  return running;
}

/** Runs the check when no other check is running. Never rejects. */
export function runCheck(req: CheckRequest): Promise<CheckOutcome> {
  const next = queue.then(() => runNow(req));
  queue = next.catch(() => undefined);
  return next;
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

/** FAISS (OpenMP) and OpenBLAS threads for the child: half the CPUs, so the service keeps the rest. */
function childThreads(): string {
  return String(Math.max(1, Math.floor(availableParallelism() / 2)));
}

function runNow(req: CheckRequest): Promise<CheckOutcome> {
  const startedAt = Date.now();
  const t0 = performance.now();
  return new Promise<CheckOutcome>((resolve) => {
    running++;
    let stage: 'starting' | 'ready' | 'loaded' = 'starting';
    let facts: CheckFacts | undefined;
    let stderrTail = '';
    let settled = false;
    let timedOut = false;
    let scratchDir: string;
    try {
      scratchDir = mkdtempSync(join(scratchBase(), 'hk-faiss-check-'));
    } catch (err) {
      running--;
      resolve({ startedAt, finishedAt: Date.now(), durationSeconds: 0, completed: false, facts: undefined, loadable: undefined, problem: `cannot create a scratch directory: ${(err as Error).message}` });
      return;
    }
    const finish = (o: Omit<CheckOutcome, 'startedAt' | 'finishedAt' | 'durationSeconds'>): void => {
      if (settled) return;
      settled = true;
      running--;
      clearTimeout(timer);
      rmSync(scratchDir, { recursive: true, force: true });
      resolve({ ...o, startedAt, finishedAt: Date.now(), durationSeconds: (performance.now() - t0) / 1000 });
    };
    const job: CheckJob = {
      path: req.path,
      k: req.k ?? 10,
      recallSample: req.recallSample,
      probes: req.probes ?? 20,
      seed: req.seed ?? 0x5eed,
      chunkBytes: 32 * 1024 * 1024,
      scratchDir,
    };
    const threads = childThreads();
    let child: ReturnType<typeof fork>;
    try {
      child = fork(CHILD, [], {
        execPath: process.execPath,
        // Never the parent's flags (a test runner's or an inspector's); gc for the chunk loop.
        execArgv: ['--expose-gc'],
        // Only what the child needs: nothing of the service's environment (secrets may be there).
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', OMP_NUM_THREADS: threads, OPENBLAS_NUM_THREADS: threads, OMP_WAIT_POLICY: 'PASSIVE' },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        serialization: 'json',
      });
    } catch (err) {
      running--;
      settled = true;
      rmSync(scratchDir, { recursive: true, force: true });
      resolve({ startedAt, finishedAt: Date.now(), durationSeconds: 0, completed: false, facts: undefined, loadable: undefined, problem: `cannot start the check process: ${(err as Error).message}` });
      return;
    }
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, req.timeoutMs);
    timer.unref();
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
        try {
          child.send(job);
        } catch {
          // the child is gone already: its exit handler reports it
        }
      } else if (msg.kind === 'loaded') {
        stage = 'loaded';
      } else if (msg.kind === 'result') {
        facts = msg.facts;
      }
    });
    child.on('error', (err) => {
      child.kill('SIGKILL');
      finish({ completed: false, facts: undefined, loadable: undefined, problem: `check process error: ${err.message}` });
    });
    child.on('exit', (code, signal) => {
      if (facts) {
        finish({ completed: facts.incomplete === undefined, facts, loadable: facts.loadable, problem: facts.error ?? facts.incomplete });
        return;
      }
      const how = timedOut ? `timed out after ${req.timeoutMs} ms` : signal ? `killed by ${signal}` : `exited with code ${code}`;
      const said = abortReason(stderrTail);
      const problem = `check process ${how} ${stage === 'starting' ? 'before faiss-node loaded' : stage === 'ready' ? 'while FAISS read the file' : 'after the file loaded'}${said ? `: ${said}` : ''}`;
      // A crash inside FAISS's read means the application would crash loading this file too:
      // the file is not loadable. A timeout says nothing about the file.
      const loadable = stage === 'loaded' ? true : stage === 'ready' && !timedOut ? false : undefined;
      finish({ completed: false, facts: undefined, loadable, problem });
    });
  });
}

/** The C++ runtime's last words ("what(): ..."), if it printed any. */
function abortReason(stderr: string): string | undefined {
  const what = /what\(\):\s*(.+)/.exec(stderr)?.[1];
  const line = what ?? stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('WARNING clustering')).pop();
  return line?.trim().slice(0, 300);
}
