import type { AnyCollector } from './collector.ts';
import postgres from './postgres.ts';
import postgresRetention from './postgres-retention.ts';
import pgbouncer from './pgbouncer.ts';
import redis from './redis.ts';
import faiss from './faiss.ts';
import backups from './backups.ts';
import elasticsearch from './elasticsearch.ts';
import certificates from './certificates.ts';

/** Every collector the service knows, in the order their metrics appear. */
export const collectors: readonly AnyCollector[] = [postgres, postgresRetention, pgbouncer, redis, faiss, elasticsearch, certificates, backups];
