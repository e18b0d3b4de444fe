import { createRequire } from 'node:module';
import type { Client } from '@elastic/elasticsearch';
import type { ElasticsearchConfig } from '../config.ts';

// The client weighs about 40 MB once loaded; a deployment with no Elasticsearch never loads
// it. require() keeps the constructor synchronous.
const require = createRequire(import.meta.url);
type EsModule = typeof import('@elastic/elasticsearch');
export function esModule(): EsModule {
  return require('@elastic/elasticsearch') as EsModule;
}

export interface ElasticsearchTargetOptions {
  /** Upper bound of one request; the scrape's own deadline (an AbortSignal) usually ends it sooner. */
  requestTimeoutMs: number;
}

// REST API compatibility (https://www.elastic.co/docs/reference/elasticsearch/rest-apis/compatibility):
// the v9 client asks for `compatible-with=9`, which an 8.x cluster refuses with a 400
// media_type_header_exception (elastic/elasticsearch-js#2909). A server accepts its own major and
// the one before, so asking for 8 works against 8.x and 9.x alike; the three read-only APIs
// this service calls (cluster health, cat indices, get snapshots) have the same shape in both.
const COMPATIBLE = 'application/vnd.elasticsearch+json; compatible-with=8';

/**
 * One official client per Elasticsearch cluster, bounded: no retries (a sick cluster gets one
 * request per scrape and per API, not four), no sniffing, at most 2 sockets, each request
 * limited by a timeout and by the scrape's abort signal. The credentials in the URL are taken
 * out of it and given as `auth`, so the client never holds a URL with a password in it (its
 * errors and connection ids name the URL); config.ts has registered the password as a secret.
 */
export class ElasticsearchTarget {
  readonly name: string;
  readonly client: Client;
  readonly indexPatterns: readonly string[];
  readonly retentionMs: number;
  readonly snapshotRepository: string | undefined;

  constructor(cfg: ElasticsearchConfig, opts: ElasticsearchTargetOptions) {
    this.name = cfg.name;
    this.indexPatterns = cfg.indexPatterns;
    this.retentionMs = cfg.retentionMs;
    this.snapshotRepository = cfg.snapshotRepository;
    const url = new URL(cfg.url);
    const username = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    url.username = '';
    url.password = '';
    const { Client: EsClient } = esModule();
    this.client = new EsClient({
      node: url.toString(),
      ...(username !== '' || password !== '' ? { auth: { username, password } } : {}),
      maxRetries: 0,
      requestTimeout: opts.requestTimeoutMs,
      sniffOnStart: false,
      sniffInterval: false,
      sniffOnConnectionFault: false,
      compression: false,
      enableMetaHeader: false,
      // Undici pool options (the client's default connection class): 2 sockets, idle ones
      // closed after 30 s rather than the client's 10 minutes.
      agent: { connections: 2, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000 },
      headers: { accept: COMPATIBLE, 'content-type': COMPATIBLE },
      name: 'housekeeper',
    });
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
