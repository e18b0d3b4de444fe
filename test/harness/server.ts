import { freePort } from './ports.ts';
import { ManagedProcess, removeTempDir, withPortRetry, type ServerSpawnOptions } from './proc.ts';

/**
 * The lifecycle every harness server shares: start() (again after stop(), same port and
 * dir), stop() waiting for the process to be gone, destroy() that also removes the dir, and
 * the pid while it runs. A server says how to launch itself; nothing else differs.
 */
export abstract class ServerLifecycle {
  abstract port: number;
  abstract readonly dir: string;
  /** Names the server in errors, e.g. "redis". */
  protected abstract readonly kind: string;
  /** How long stop() waits for the process before SIGKILL. */
  protected readonly stopTimeoutMs: number = 30_000;
  protected proc: ManagedProcess | undefined;
  private destroyed = false;

  /** Starts the process and waits until it is ready; sets this.proc. */
  protected abstract launch(): Promise<void>;

  /** Runs after a (re)start's launch; nothing by default. */
  protected async afterStart(): Promise<void> {}

  /** The server as error messages name it; its kind by default. */
  protected get label(): string {
    return this.kind;
  }

  get pid(): number | undefined {
    return this.proc?.running ? this.proc.pid : undefined;
  }

  async start(): Promise<void> {
    if (this.destroyed) throw new Error(`${this.label} on port ${this.port}: start() after destroy()`);
    if (this.proc?.running) return;
    await this.launch();
    await this.afterStart();
  }

  async stop(): Promise<void> {
    await this.proc?.stop(this.stopTimeoutMs);
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    await this.stop();
    await removeTempDir(this.dir);
  }

  /**
   * Spawns the server as this.proc and waits for `ready`; a server that does not get ready
   * (or exits) is stopped before the error goes on, so a retry on another port starts clean.
   */
  protected async spawnUntilReady(spawn: ServerSpawnOptions, ready: (proc: ManagedProcess) => Promise<unknown>): Promise<void> {
    const proc = new ManagedProcess(spawn);
    this.proc = proc;
    try {
      await ready(proc);
    } catch (err) {
      await proc.stop(10_000);
      throw err;
    }
  }
}

/** Probe for Prometheus and Alertmanager: GET `${url}/-/ready` answers 2xx. */
export async function httpReady(url: string): Promise<true | undefined> {
  const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(3000) });
  await res.arrayBuffer();
  return res.ok ? true : undefined;
}

/**
 * Gives `server` a fresh free port and runs `launch` (write the config for that port, then
 * start); again with another port when the bind fails (see withPortRetry).
 */
export function launchOnFreePort(server: { port: number }, launch: () => Promise<void>): Promise<void> {
  return withPortRetry(freePort, async (port) => {
    server.port = port;
    await launch();
  });
}

/** Runs a new server's `start` steps and returns it; when a step fails, destroys it (dir too) and rethrows. */
export async function startOrDestroy<T extends { destroy(): Promise<void> }>(server: T, start: () => Promise<void>): Promise<T> {
  try {
    await start();
    return server;
  } catch (err) {
    await server.destroy().catch(() => {});
    throw err;
  }
}
