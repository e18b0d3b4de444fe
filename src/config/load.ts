import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { LineCounter, parseDocument } from 'yaml';
import { ActionsSchema, normaliseActions, type ActionsConfig } from './actions.ts';
import { BackupsSchema, normaliseBackups, type BackupsConfig } from './backups.ts';
import { CertificateSchema, normaliseCertificates, type CertificateConfig } from './certificates.ts';
import { ElasticsearchSchema, normaliseElasticsearch, type ElasticsearchConfig } from './elasticsearch.ts';
import { FaissIndexSchema, normaliseFaiss, type FaissIndexConfig } from './faiss.ts';
import { GrafanaSchema, normaliseGrafana, type GrafanaConfig } from './grafana.ts';
import {
  RemediationSchema,
  StateSchema,
  WebhookSchema,
  normaliseRemediation,
  normaliseState,
  normaliseWebhook,
  type RemediationConfig,
  type StateConfig,
  type WebhookConfig,
} from './remediation.ts';
import { type Ctx } from './schema.ts';
import { CollectorsSchema, LogSchema, ServerSchema, normaliseCollectors, normaliseServer, type CollectorsConfig, type LogLevel, type ServerConfig } from './server.ts';
import { ConfigError, checkSchema, expandEnv, type Src } from './source.ts';
import {
  PgBouncerTargetSchema,
  RedisTargetSchema,
  UrlTargetSchema,
  normalisePgBouncer,
  normalisePgTargets,
  normaliseRedis,
  type NamedTarget,
  type PgBouncerTargetConfig,
  type RedisTargetConfig,
} from './targets.ts';

// The config file (HOUSEKEEPER_CONFIG) is YAML. Strings may reference environment
// variables as ${NAME}, and URL fields have a *_file twin, so secrets need not sit in
// the file. Everything is validated at boot; the first problem stops the service with the
// file, the field and the line named. One module per section holds its schema (with
// defaults and descriptions) and its normaliser; this one puts them together.

const list = <T extends TSchema>(item: T, description: string) => Type.Array(item, { default: [], description });

export const ConfigSchema = Type.Object(
  {
    server: ServerSchema,
    log: LogSchema,
    collectors: CollectorsSchema,
    postgres: list(UrlTargetSchema, 'Postgres servers, primaries and replicas (the role is detected)'),
    pgbouncer: list(PgBouncerTargetSchema, "PgBouncer admin consoles (a user in admin_users; stats_users to only watch)"),
    redis: list(RedisTargetSchema, 'Redis servers'),
    faiss: list(FaissIndexSchema, 'FAISS index files'),
    backups: Type.Optional(BackupsSchema),
    elasticsearch: list(ElasticsearchSchema, 'Elasticsearch clusters'),
    certificates: list(CertificateSchema, 'TLS endpoints and certificate files'),
    state: StateSchema,
    webhook: WebhookSchema,
    remediation: RemediationSchema,
    actions: ActionsSchema,
    grafana: Type.Optional(GrafanaSchema),
  },
  { additionalProperties: false },
);
type RawConfig = Static<typeof ConfigSchema>;

/** The validated config, with defaults applied and durations in milliseconds. */
export interface Config {
  file: string;
  server: ServerConfig;
  logLevel: LogLevel;
  /** Collectors switched on beyond the default set, default ones switched off, and the postgres collector's bounds. */
  collectors: CollectorsConfig;
  postgres: NamedTarget[];
  pgbouncer: PgBouncerTargetConfig[];
  redis: RedisTargetConfig[];
  faiss: FaissIndexConfig[];
  /** Undefined when no backups section is configured. */
  backups: BackupsConfig | undefined;
  elasticsearch: ElasticsearchConfig[];
  certificates: CertificateConfig[];
  state: StateConfig;
  webhook: WebhookConfig;
  remediation: RemediationConfig;
  actions: ActionsConfig;
  grafana: GrafanaConfig | undefined;
}

/** Reads, validates and normalises the config file. Throws ConfigError naming file and field. */
export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read file: ${(err as Error).message}`);
  }
  return parseConfig(text, file, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lineCounter = new LineCounter();
  const yamlDoc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter });
  const first = yamlDoc.errors[0];
  if (first) {
    throw new ConfigError(file, '', `YAML syntax: ${first.message.split('\n')[0]}`, first.linePos?.[0]?.line);
  }
  const src: Src = { doc: yamlDoc, lines: lineCounter };
  const expanded = expandEnv(yamlDoc.toJS() ?? {}, [], file, src, env);
  const given = new Set(expanded !== null && typeof expanded === 'object' ? Object.keys(expanded) : []);
  // Defaults are filled once, here, from the schemas; then the whole is validated.
  const defaulted: unknown = Value.Default(ConfigSchema, expanded);
  checkSchema(ConfigSchema, defaulted, file, src);
  return normalise(defaulted as RawConfig, { file, src, base: resolve(file, '..'), env, given });
}

function normalise(raw: RawConfig, ctx: Ctx): Config {
  const postgres = normalisePgTargets('postgres', raw.postgres, ctx);
  const pgbouncer = normalisePgBouncer(raw.pgbouncer, ctx);
  const redis = normaliseRedis(raw.redis, ctx);
  return {
    file: ctx.file,
    postgres,
    pgbouncer,
    redis,
    faiss: normaliseFaiss(raw.faiss, postgres, ctx),
    backups: normaliseBackups(raw.backups, ctx),
    elasticsearch: normaliseElasticsearch(raw.elasticsearch, ctx),
    certificates: normaliseCertificates(raw.certificates, ctx),
    state: normaliseState(raw.state, ctx),
    webhook: normaliseWebhook(raw.webhook, ctx),
    actions: normaliseActions(raw.actions, { postgres, redis }, ctx),
    grafana: normaliseGrafana(raw.grafana, ctx),
    remediation: normaliseRemediation(raw.remediation, ctx),
    server: normaliseServer(raw.server, ctx),
    logLevel: raw.log.level,
    collectors: normaliseCollectors(raw.collectors, ctx),
  };
}
