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

  async close(): Promise<void> {
    this.client.disconnect(false);
  }
}
