import { spawn } from 'node:child_process';

// Child programs (pg_dump, pg_restore, tar, the exec action's argv) run through one function:
// argv arrays, never a shell, output kept bounded, and always ended on abort or timeout.

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Runs argv without a shell; SIGTERM on abort or timeout, SIGKILL 5 s later. */
export function runArgv(argv: string[], opts: { env: Record<string, string>; cwd: string | undefined; timeoutMs: number; signal?: AbortSignal }): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv as [string, ...string[]];
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], shell: false });
    let output = '';
    const keep = (b: Buffer): void => {
      // Keep the tail only: enough for the log, bounded in memory.
      output = (output + b.toString('utf8')).slice(-4096);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let killer: NodeJS.Timeout | undefined;
    const stop = (why: string): void => {
      output += `\n[housekeeper: ${why}; sending SIGTERM]`;
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    };
    const timer = setTimeout(() => stop(`timed out after ${opts.timeoutMs} ms`), opts.timeoutMs);
    const onAbort = (): void => stop(String((opts.signal?.reason as Error | undefined)?.message ?? 'cancelled'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ code, signal, output });
    });
  });
}
