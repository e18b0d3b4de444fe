import { Type, type Static } from '@sinclair/typebox';
import { runbook } from '../runbook.ts';
import { Duration, durationText, normaliseFields, type Ctx, type Normalised } from './schema.ts';

// server, log and collectors: how the exporter listens, logs and scrapes.

export const ServerSchema = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', description: 'address the HTTP server listens on' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 9847, description: 'port the HTTP server listens on' }),
    scrape_timeout: Duration('deadline of a scrape when Prometheus does not send X-Prometheus-Scrape-Timeout-Seconds', '10s'),
    scrape_timeout_offset: Duration("kept back from Prometheus's timeout so the answer arrives before it gives up", '500ms'),
  },
  { additionalProperties: false, default: {}, description: 'the HTTP server: /metrics, the webhook, the API' },
);
export type ServerConfig = Normalised<Static<typeof ServerSchema>>;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LogSchema = Type.Object(
  { level: Type.Union(LEVELS.map((l) => Type.Literal(l)), { default: 'info', description: 'log level' }) },
  { additionalProperties: false, default: {}, description: 'logging, JSON lines on stdout' },
);
export type LogLevel = (typeof LEVELS)[number];

export const CollectorsSchema = Type.Object(
  {
    enabled: Type.Array(Type.String(), { default: [], description: 'collectors off by default, switched on' }),
    disabled: Type.Array(Type.String(), { default: [], description: 'collectors switched off: postgres, postgres_retention, pgbouncer, redis, faiss, elasticsearch, certificates, backups' }),
    postgres: Type.Object(
      {
        long_query_threshold: Duration("a query running longer counts as long-running; the default is the runbook's", durationText(runbook.longQuerySeconds)),
        top_tables: Type.Integer({ minimum: 1, maximum: 500, default: 20, description: 'tables reported, by dead tuples; bounds cardinality' }),
        top_statements: Type.Integer({ minimum: 1, maximum: 200, default: 10, description: 'pg_stat_statements entries reported, by mean time' }),
      },
      { additionalProperties: false, default: {}, description: 'the postgres collector' },
    ),
  },
  { additionalProperties: false, default: {}, description: 'which collectors run, and their bounds' },
);
export type CollectorsConfig = Normalised<Static<typeof CollectorsSchema>>;

export function normaliseServer(raw: Static<typeof ServerSchema>, ctx: Ctx): ServerConfig {
  return normaliseFields(ServerSchema, raw, ['server'], ctx);
}

export function normaliseCollectors(raw: Static<typeof CollectorsSchema>, ctx: Ctx): CollectorsConfig {
  return normaliseFields(CollectorsSchema, raw, ['collectors'], ctx);
}
