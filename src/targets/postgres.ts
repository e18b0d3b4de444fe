import pg from 'pg';
import type { Logger } from '../log.ts';

export interface PgPoolOptions {
  /** Connections this target may hold at most; a hung server can never get more. */
  maxConnections: number;
  connectTimeoutMs: number;
  /** Server-side statement_timeout; not for PgBouncer's admin console, which rejects it. */
  statementTimeoutMs?: number;
  applicationName?: string;
}

/**
 * A bounded pool to one Postgres server (or PgBouncer's admin console). Connections are
 * opened lazily, so a server that is down at start costs nothing and comes back by itself.
 */
export class PgTarget {
  readonly name: string;
  private readonly pool: pg.Pool;
  readonly #url: string;

  constructor(name: string, url: string, opts: PgPoolOptions, log: Logger) {
    this.name = name;
    this.#url = url;
    const cfg: pg.PoolConfig = {
      connectionString: url,
      max: opts.maxConnections,
      idleTimeoutMillis: 60_000,
      connectionTimeoutMillis: opts.connectTimeoutMs,
      keepAlive: true,
    };
    if (opts.applicationName !== undefined) cfg.application_name = opts.applicationName;
    if (opts.statementTimeoutMs !== undefined) cfg.statement_timeout = opts.statementTimeoutMs;
    this.pool = new pg.Pool(cfg);
    // An idle connection that breaks (server restarted) is dropped; never crash for it.
    this.pool.on('error', (err) => log.debug({ target: name, err }, 'idle connection closed'));
  }

  /**
   * Runs fn on one pooled connection. When the signal aborts (deadline passed) the
   * connection is destroyed, which also fails the query in flight; so is a connection whose
   * error was not an ordinary SQL error, since its state is unknown.
   */
  async use<R>(signal: AbortSignal, fn: (client: pg.PoolClient) => Promise<R>): Promise<R> {
    signal.throwIfAborted();
    const client = await this.pool.connect();
    let released = false;
    const release = (err?: Error): void => {
      if (released) return;
      released = true;
      client.release(err ?? false);
    };
    const onAbort = (): void => release(new Error('collection aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal.aborted) throw signal.reason;
      return await fn(client);
    } catch (err) {
      release(err instanceof pg.DatabaseError ? undefined : (err as Error));
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      release();
    }
  }

  /**
   * The connection URL, for what needs a connection of its own outside the pool (pg_dump,
   * a rebuild child, a scratch database). It holds the password: never log or return it.
   */
  get url(): string {
    return this.#url;
  }

  /** Connections open now (idle + in use); tests use it to prove the bound. */
  get openConnections(): number {
    return this.pool.totalCount;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
