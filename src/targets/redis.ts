import { Redis } from 'ioredis';
import type { Logger } from '../log.ts';

export interface RedisTargetOptions {
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}

/**
 * One connection per Redis target. Commands fail at once while it is disconnected (no
 * offline queue to pile up), and it reconnects by itself with backoff, so a Redis that is
 * down at start or restarts comes back without a restart of housekeeper.
 */
export class RedisTarget {
  readonly name: string;
  readonly client: Redis;
  /** Databases declared to hold only cache data (the only ones a flush may touch). */
  readonly cacheDbs: readonly number[];
  private lastErrorLog = 0;

  constructor(name: string, url: string, cacheDbs: readonly number[], opts: RedisTargetOptions, log: Logger) {
    this.name = name;
    this.cacheDbs = cacheDbs;
    this.client = new Redis(url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.commandTimeoutMs,
      connectTimeout: opts.connectTimeoutMs,
      connectionName: 'housekeeper',
      retryStrategy: (times) => Math.min(200 * times, 5_000),
    });
    this.client.on('error', (err: Error) => {
      // ioredis emits an error per failed reconnect; log one a minute at most.
      const now = Date.now();
      if (now - this.lastErrorLog > 60_000) {
        this.lastErrorLog = now;
        log.warn({ target: name, err }, 'redis connection error');
      }
    });
  }

  /**
   * Resolves when the connection is ready. Waits (until the signal aborts) only while a
   * connection attempt is under way, as at boot; a server known to be down fails at once,
   * so a down target never makes a scrape slow.
   */
  async ready(signal: AbortSignal): Promise<void> {
    const c = this.client;
    if (c.status === 'ready') return;
    if (c.status !== 'connecting' && c.status !== 'connect') throw new Error(`redis not connected (${c.status})`);
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        c.off('ready', onReady);
        c.off('close', onClose);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onReady = (): void => done();
      const onClose = (): void => done(new Error('redis connection closed'));
      const onAbort = (): void => done(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      c.once('ready', onReady);
      c.once('close', onClose);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async close(): Promise<void> {
    this.client.disconnect(false);
  }
}
