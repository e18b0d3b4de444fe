import { removeTempDir, type ManagedProcess } from './proc.ts';

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
  protected proc: ManagedProcess | undefined;
  private destroyed = false;

  /** Starts the process and waits until it is ready; sets this.proc. */
  protected abstract launch(): Promise<void>;

  /** Runs after a (re)start's launch; nothing by default. */
  protected async afterStart(): Promise<void> {}

  get pid(): number | undefined {
    return this.proc?.running ? this.proc.pid : undefined;
  }

  async start(): Promise<void> {
    if (this.destroyed) throw new Error(`${this.kind} on port ${this.port}: start() after destroy()`);
    if (this.proc?.running) return;
    await this.launch();
    await this.afterStart();
  }

  async stop(): Promise<void> {
    await this.proc?.stop(30_000);
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    await this.stop();
    await removeTempDir(this.dir);
  }
}
