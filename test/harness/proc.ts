// Process and temp-dir bookkeeping shared by the server starters.
//
// - Every process the harness starts is recorded here by pid, until Node has reaped it.
// - On process exit (and on SIGINT/SIGTERM/SIGHUP) whatever is still recorded is signalled
//   by pid, waited for (bounded), and the temp dirs not yet destroyed are removed.
// - Servers are spawned through `setpriv --pdeathsig`, so they are also signalled by the
//   kernel if this process dies without running its exit hooks (SIGKILL, crash). setpriv
//   execs the server, so the pid we record is the server's own pid. Caveat: the kernel
//   ties the death signal to the *thread* that spawned the child, so start servers from the
//   main thread, not from a worker_thread that exits early.
// - As root, Postgres and PgBouncer (which refuse root) run as the `postgres` user via
//   setpriv's --reuid/--regid (same effect as `runuser -u postgres`, but no intermediate
//   process between us and the server).
// Nothing here ever signals a process it did not start itself.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** The user to run Postgres/PgBouncer as: `postgres` when we are root, else ourselves (undefined). */
export const serverOwner: Owner | undefined = (() => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('harness: running as root but there is no `postgres` user to run Postgres/PgBouncer as');
  }
  const parts = line.split(':');
  return { uid: Number(parts[2]), gid: Number(parts[3]) };
})();

/** Keep temp dirs (logs, data) after destroy() and at exit, for debugging. */
const keepTempDirs = process.env['HOUSEKEEPER_HARNESS_KEEP'] === '1';

const HAS_SETPRIV = (() => {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Environment for servers and tools: ours minus libpq's PG* variables, C locale. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PG') && !k.startsWith('LC_') && k !== 'LANG') env[k] = v;
  }
  env['LC_ALL'] = 'C';
  return { ...env, ...extra };
}

// ---------------------------------------------------------------------------------------
// Registry and exit hooks

interface LiveEntry {
  readonly name: string;
  readonly exitSignal: NodeJS.Signals;
}
const live = new Map<number, LiveEntry>();
const tempDirs = new Set<string>();
let hooksInstalled = false;

/** Pids of processes the harness started that have not exited yet (for tests). */
export function livePids(): number[] {
  return [...live.keys()];
}

/** True if the pid exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X' && state !== '';
}

/** Pids whose parent is `pid` (from /proc). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${ent}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) === pid) out.push(Number(ent));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function cleanupSync(): void {
  const entries = [...live.entries()];
  for (const [pid, e] of entries) {
    try {
      process.kill(pid, e.exitSignal);
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && entries.some(([pid]) => pidAlive(pid))) sleepSync(20);
  for (const [pid] of entries) {
    if (pidAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  if (!keepTempDirs) {
    for (const dir of tempDirs) {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      cleanupSync();
      process.removeListener(sig, handler);
      // Re-raise for the default behaviour (exit by that signal) unless someone else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

// ---------------------------------------------------------------------------------------
// Temp dirs

/**
 * Where servers' temp dirs and the template cache live. Measured on the target VM, creating
 * files on the ext4 /tmp costs ~0.35 ms each (a cluster has ~1300 files: copying one took
 * 0.6-1.1 s, initdb ~1 s), versus ~0.01 ms on tmpfs (copy 45 ms). So: /dev/shm when it is a
 * writable tmpfs with at least 2 GiB free, else os.tmpdir(). HOUSEKEEPER_HARNESS_TMPDIR overrides.
 */
export const harnessTmpRoot: string = (() => {
  const fromEnv = process.env['HOUSEKEEPER_HARNESS_TMPDIR'];
  if (fromEnv) return fromEnv;
  try {
    const st = fs.statfsSync('/dev/shm');
    const TMPFS_MAGIC = 0x01021994;
    if (st.type === TMPFS_MAGIC && st.bavail * st.bsize >= 2 * 1024 ** 3) {
      fs.accessSync('/dev/shm', fs.constants.W_OK);
      return '/dev/shm';
    }
  } catch {
    // no usable /dev/shm
  }
  return os.tmpdir();
})();

/** Per-uid cache dir (the Postgres template lives here). */
export function cacheRoot(): string {
  const dir = path.join(harnessTmpRoot, `housekeeper-harness-${process.getuid?.() ?? 0}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

const OWNER_FILE = '.harness-owner';

function procStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

const ownerStamp = `${process.pid} ${procStartTime(process.pid) ?? ''}`;

function ownerAlive(dir: string): boolean {
  let stamp: string;
  try {
    stamp = fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8').trim();
  } catch {
    return true; // not ours, or still being set up: leave it alone
  }
  const [pid, start] = stamp.split(' ');
  return procStartTime(Number(pid)) === start;
}

let swept = false;

/**
 * Removes temp dirs left by harness processes that died without cleaning up (SIGKILL, crash):
 * their servers died with them (pdeathsig), but on tmpfs the files would hold RAM until reboot.
 * Only dirs carrying an owner stamp whose process is gone are touched.
 */
export function sweepStaleTempDirs(): void {
  swept = true;
  const candidates: string[] = [];
  try {
    for (const e of fs.readdirSync(harnessTmpRoot)) if (e.startsWith('hk-')) candidates.push(path.join(harnessTmpRoot, e));
    for (const e of fs.readdirSync(cacheRoot())) if (e.includes('.tmp-')) candidates.push(path.join(cacheRoot(), e));
  } catch {
    return;
  }
  for (const dir of candidates) {
    if (ownerAlive(dir)) continue;
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // another process sweeping the same dir
    }
  }
}

/**
 * mkdtemp under `parent` (default harnessTmpRoot), mode 0700, owned by `owner` if given, stamped
 * with our pid; removed at exit unless removeTempDir/untrackTempDir was called earlier.
 */
export function makeTempDir(prefix: string, owner: Owner | undefined, parent = harnessTmpRoot): string {
  installHooks();
  if (!swept) sweepStaleTempDirs();
  const dir = fs.mkdtempSync(path.join(parent, prefix));
  tempDirs.add(dir);
  fs.chmodSync(dir, 0o700);
  fs.writeFileSync(path.join(dir, OWNER_FILE), ownerStamp + '\n');
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  return dir;
}

/** Stops removing `dir` at exit (and drops its owner stamp): it is kept for good. */
export function untrackTempDir(dir: string): void {
  tempDirs.delete(dir);
}

export async function removeTempDir(dir: string): Promise<void> {
  tempDirs.delete(dir);
  if (keepTempDirs) return;
  await fs.promises.rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Writes a file and gives it to `owner` (if any). */
export function writeOwnedFile(file: string, content: string, owner: Owner | undefined, mode = 0o600): void {
  fs.writeFileSync(file, content, { mode });
  fs.chmodSync(file, mode);
  if (owner) fs.chownSync(file, owner.uid, owner.gid);
}

// ---------------------------------------------------------------------------------------
// Logs

/** The last `lines` lines of a file (reads at most its last 16 KiB). */
export function logTail(file: string, lines = 40, fromOffset = 0): string {
  try {
    const size = fs.statSync(file).size;
    const start = Math.max(fromOffset, size - 16384);
    const len = size - start;
    if (len <= 0) return '(empty)';
    const buf = Buffer.alloc(len);
    const fd = fs.openSync(file, 'r');
    try {
      fs.readSync(fd, buf, 0, len, start);
    } finally {
      fs.closeSync(fd);
    }
    return buf.toString('utf8').split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(no log: ${(err as Error).message})`;
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------
// Processes

function wrapCommand(
  cmd: string,
  args: readonly string[],
  asOwner: Owner | undefined,
  deathSignal: NodeJS.Signals | undefined,
): { file: string; argv: string[]; uid?: number; gid?: number } {
  if (HAS_SETPRIV) {
    const pre: string[] = [];
    if (asOwner) pre.push(`--reuid=${asOwner.uid}`, `--regid=${asOwner.gid}`, '--clear-groups');
    // setpriv applies --pdeathsig after changing credentials, so it survives the uid change.
    if (deathSignal) pre.push(`--pdeathsig=${deathSignal.replace(/^SIG/, '')}`);
    return { file: 'setpriv', argv: [...pre, '--', cmd, ...args] };
  }
  return asOwner ? { file: cmd, argv: [...args], uid: asOwner.uid, gid: asOwner.gid } : { file: cmd, argv: [...args] };
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ServerSpawnOptions {
  readonly name: string;
  readonly cmd: string;
  readonly args: readonly string[];
  /** stdout and stderr are appended here. */
  readonly logFile: string;
  readonly asOwner: Owner | undefined;
  /** Sent by stop(): the server's graceful/fast shutdown signal. */
  readonly stopSignal: NodeJS.Signals;
  /** Sent by the exit hook (and by the kernel if we die): should end the server quickly. */
  readonly exitSignal: NodeJS.Signals;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/** A long-running server process started by the harness. */
export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Size of the log file when this process was spawned: its own output starts there. */
  readonly logOffset: number;
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | undefined;
  private readonly child: ChildProcess;
  private readonly stopSignal: NodeJS.Signals;

  constructor(o: ServerSpawnOptions) {
    installHooks();
    this.name = o.name;
    this.logFile = o.logFile;
    this.stopSignal = o.stopSignal;
    this.logOffset = fileSize(o.logFile);
    const fd = fs.openSync(o.logFile, 'a', 0o644);
    if (o.asOwner) fs.fchownSync(fd, o.asOwner.uid, o.asOwner.gid);
    const w = wrapCommand(o.cmd, o.args, o.asOwner, o.exitSignal);
    let child: ChildProcess;
    try {
      child = spawn(w.file, w.argv, {
        stdio: ['ignore', fd, fd],
        env: o.env ?? cleanEnv(),
        cwd: o.cwd ?? os.tmpdir(),
        ...(w.uid !== undefined ? { uid: w.uid, gid: w.gid } : {}),
      });
    } finally {
      fs.closeSync(fd);
    }
    this.child = child;
    if (child.pid === undefined) {
      throw new Error(`harness: could not spawn ${o.name} (${w.file})`);
    }
    const pid = child.pid;
    this.pid = pid;
    live.set(pid, { name: o.name, exitSignal: o.exitSignal });
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(pid);
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
    child.once('error', (err) => {
      fs.appendFileSync(o.logFile, `\n[harness] spawn error: ${err.message}\n`);
    });
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get exitDescription(): string {
    const e = this.exitInfo;
    if (!e) return 'running';
    return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
  }

  /** The log written since this process was spawned. */
  ownLog(): string {
    return logTail(this.logFile, 200, this.logOffset);
  }

  /** Sends the stop signal and waits until the process is gone (SIGKILL after timeoutMs). */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (!this.running) return;
    try {
      this.child.kill(this.stopSignal);
    } catch {
      // raced with exit
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut && this.running) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

class ServerExitedError extends Error {
  readonly serverLog: string;
  constructor(message: string, serverLog: string) {
    super(message);
    this.name = 'ServerExitedError';
    this.serverLog = serverLog;
  }
}

const BIND_FAILURE = /address already in use|could not bind|EADDRINUSE|could not create any TCP\/IP sockets/i;

function isBindFailure(err: unknown): boolean {
  return err instanceof ServerExitedError && BIND_FAILURE.test(err.serverLog);
}

/**
 * Polls `probe` until it returns a value other than undefined. Fails after timeoutMs, or as
 * soon as `proc` exits, with the tail of the server's log in the message.
 */
export async function waitFor<T>(
  what: string,
  proc: ManagedProcess,
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs?: number; intervalMs?: number; failOnLog?: RegExp } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  const tail = (): string => `\n--- ${proc.logFile} (tail) ---\n${logTail(proc.logFile, 40, proc.logOffset)}`;
  // Anything that ends the wait early: the process exits, or logs a fatal line. Raced against
  // each probe, so a probe stuck on someone else's socket does not delay the verdict.
  let fatalLog: string | undefined;
  let poll: NodeJS.Timeout | undefined;
  const interrupted = new Promise<void>((resolve) => {
    void proc.exited.then(() => resolve());
    const re = opts.failOnLog;
    if (re) {
      poll = setInterval(() => {
        const own = proc.ownLog();
        if (re.test(own)) {
          fatalLog = own;
          resolve();
        }
      }, 50);
    }
  });
  let lastError = '';
  try {
    for (;;) {
      if (!proc.running) {
        throw new ServerExitedError(`${what}: ${proc.name} (pid ${proc.pid}) ${proc.exitDescription} before it was ready${tail()}`, proc.ownLog());
      }
      if (fatalLog !== undefined) {
        await proc.stop(10_000);
        throw new ServerExitedError(`${what}: ${proc.name} (pid ${proc.pid}) logged a fatal problem before it was ready${tail()}`, fatalLog);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${what}: ${proc.name} (pid ${proc.pid}) not ready after ${timeoutMs / 1000} s` +
            (lastError ? `; last probe error: ${lastError}` : '') +
            tail(),
        );
      }
      let timer: NodeJS.Timeout | undefined;
      const attempt = probe().then(
        (v) => ({ v }),
        (err: unknown) => {
          lastError = (err as Error).message;
          return undefined;
        },
      );
      const r = await Promise.race([
        attempt,
        interrupted.then(() => undefined),
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), left))),
      ]);
      clearTimeout(timer);
      if (r && r.v !== undefined) return r.v;
      await Promise.race([sleep(intervalMs), interrupted]);
    }
  } finally {
    clearInterval(poll);
  }
}

/** Runs `attempt(port)` with fresh ports until it does not fail with a bind failure (max 6 tries). */
export async function withPortRetry<T>(
  freshPort: () => Promise<number>,
  attempt: (port: number) => Promise<T>,
  tries = 6,
): Promise<T> {
  for (let i = 1; ; i++) {
    const port = await freshPort();
    try {
      return await attempt(port);
    } catch (err) {
      if (i >= tries || !isBindFailure(err)) throw err;
    }
  }
}

export interface ToolOptions {
  readonly asOwner: Owner | undefined;
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs?: number;
  readonly cwd?: string;
}

/** Runs a short-lived command to completion; rejects with its output on failure or timeout. */
export function runTool(cmd: string, args: readonly string[], o: ToolOptions): Promise<string> {
  installHooks();
  const timeoutMs = o.timeoutMs ?? 60_000;
  const w = wrapCommand(cmd, args, o.asOwner, 'SIGKILL');
  return new Promise((resolve, reject) => {
    const child = spawn(w.file, w.argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: o.env ?? cleanEnv(),
      cwd: o.cwd ?? os.tmpdir(),
      ...(w.uid !== undefined ? { uid: w.uid, gid: w.gid } : {}),
    });
    const pid = child.pid;
    if (pid !== undefined) {
      live.set(pid, { name: cmd, exitSignal: 'SIGKILL' });
      // Forget the pid as soon as it is reaped, so it can never be signalled after reuse.
      child.once('exit', () => live.delete(pid));
    }
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      if (pid !== undefined) live.delete(pid);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else
        reject(
          new Error(
            `${path.basename(cmd)} ${args.join(' ')} ${signal ? `killed by ${signal}` : `exited with code ${code}`}` +
              `${signal === 'SIGKILL' ? ` (timeout ${timeoutMs / 1000} s?)` : ''}\n${out.split('\n').slice(-40).join('\n')}`,
          ),
        );
    });
  });
}
