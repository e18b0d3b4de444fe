import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { hostname } from 'node:os';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { registerSecret } from './log.ts';
import { parseDuration } from './util/duration.ts';

// The config file (HOUSEKEEPER_CONFIG) is YAML. Strings may reference environment
// variables as ${NAME}, and URL fields have a *_file twin, so secrets need not sit in
// the file. Everything is validated at boot; the first problem stops the service with the
// file, the field and the line named.

const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$', description: 'target name' });
const Duration = Type.String({ description: 'duration such as 5s, 2m, 1h' });

const UrlTarget = Type.Object(
  {
    name: Name,
    url: Type.Optional(Type.String({ minLength: 1 })),
    url_file: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

const RedisTarget = Type.Object(
  {
    name: Name,
    url: Type.Optional(Type.String({ minLength: 1 })),
    url_file: Type.Optional(Type.String({ minLength: 1 })),
    // Databases that hold only cache data; remediation may flush these and no others.
    cache_dbs: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 15 }))),
  },
  { additionalProperties: false },
);

const FaissIndex = Type.Object(
  {
    name: Name,
    path: Type.String({ minLength: 1, description: 'path of the FAISS index file' }),
    // The index's source of truth: rows in a Postgres table with a real[] vector column.
    source: Type.Optional(
      Type.Object(
        {
          target: Name,
          table: Type.String({ minLength: 1 }),
          id_column: Type.String({ minLength: 1 }),
          vector_column: Type.String({ minLength: 1 }),
        },
        { additionalProperties: false },
      ),
    ),
    // What faiss-rebuild builds when its params and the live index do not say (index_factory).
    factory: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_,.=]+$', description: 'FAISS index_factory descriptor, e.g. IVF1024,Flat' })),
    metric: Type.Optional(Type.Union([Type.Literal('l2'), Type.Literal('inner_product')])),
    check_interval: Type.Optional(Duration),
    recall_floor: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    recall_sample: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  },
  { additionalProperties: false },
);

// A glob of names in the backup directory itself (no "/": subdirectories are not searched).
const BackupKind = Type.Object(
  { pattern: Type.String({ minLength: 1, pattern: '^[^/]+$', description: 'glob of file names in the backup directory, without "/"' }) },
  { additionalProperties: false },
);
const BackupKinds = Type.Object(
  {
    database: Type.Optional(BackupKind),
    vector_index: Type.Optional(BackupKind),
    configuration: Type.Optional(BackupKind),
    document_store: Type.Optional(BackupKind),
    secrets: Type.Optional(BackupKind),
  },
  { additionalProperties: false },
);

const ElasticsearchTarget = Type.Object(
  {
    name: Name,
    url: Type.Optional(Type.String({ minLength: 1 })),
    url_file: Type.Optional(Type.String({ minLength: 1 })),
    index_patterns: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    retention: Type.Optional(Duration),
    snapshot_repository: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

const Certificate = Type.Object(
  {
    name: Name,
    host: Type.Optional(Type.String({ minLength: 1 })),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    server_name: Type.Optional(Type.String({ minLength: 1 })),
    // PEM bundle trusted, besides Node's roots, when verifying an endpoint's chain (private CAs).
    ca_file: Type.Optional(Type.String({ minLength: 1 })),
    file: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

const WarmQuery = Type.Object(
  {
    postgres: Name,
    // Trusted SQL from the config file (never from alerts): returns key and value columns.
    sql: Type.String({ minLength: 1 }),
    key_column: Type.Optional(Type.String({ minLength: 1 })),
    value_column: Type.Optional(Type.String({ minLength: 1 })),
    redis: Name,
    db: Type.Optional(Type.Integer({ minimum: 0, maximum: 15 })),
    ttl: Type.Optional(Duration),
  },
  { additionalProperties: false },
);

// A program the exec action may run: an argv array (no shell), a timeout, and the alert
// labels it may receive, only as environment variables HK_LABEL_<NAME>.
const ExecProgram = Type.Object(
  {
    argv: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    timeout: Type.Optional(Duration),
    env_from_labels: Type.Optional(Type.Array(Type.String({ pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' }))),
    cwd: Type.Optional(Type.String({ minLength: 1 })),
    // Optional check run after the program: exit 0 means the condition cleared.
    verify_argv: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
  },
  { additionalProperties: false },
);

// Old-data cleanup (cleanup-old-rows) and archiving (archive-old-rows): which table, which
// time column and how old. Config only, never alert input: a rule's params name the entry.
// The actions check table and column against the catalog and quote them.
const PgIdent = (description: string) => Type.String({ minLength: 1, maxLength: 63, description });
const cleanupFields = {
  postgres: Name,
  schema: Type.Optional(PgIdent('schema of the table; needed when the name exists in several')),
  table: PgIdent('table, exactly as in the catalog'),
  column: PgIdent('timestamp, timestamptz or date column that dates each row'),
  older_than: Duration,
  batch_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'rows per batch (one transaction each)' })),
  pause: Type.Optional(Duration),
};
const CleanupEntry = Type.Object(cleanupFields, { additionalProperties: false });
const ArchiveEntry = Type.Object(
  {
    ...cleanupFields,
    archive_table: PgIdent('table the rows move to'),
    archive_schema: Type.Optional(PgIdent('schema of the archive table (default: the source table\'s)')),
    // Absent archive table: created LIKE the source (constraints, indexes, comments; no
    // defaults, identity or generation, so rows keep their values), unless this is false.
    create_archive: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const Secret = { description: 'a value, ${ENV} reference, or use the *_file form' };

export const ConfigSchema = Type.Object(
  {
    server: Type.Optional(
      Type.Object(
        {
          host: Type.Optional(Type.String()),
          port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
          // Deadline of a scrape when Prometheus does not send X-Prometheus-Scrape-Timeout-Seconds.
          scrape_timeout: Type.Optional(Duration),
          // Kept back from Prometheus's timeout so the answer arrives before it gives up.
          scrape_timeout_offset: Type.Optional(Duration),
        },
        { additionalProperties: false },
      ),
    ),
    log: Type.Optional(
      Type.Object(
        { level: Type.Optional(Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)))) },
        { additionalProperties: false },
      ),
    ),
    collectors: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Array(Type.String())),
          disabled: Type.Optional(Type.Array(Type.String())),
          postgres: Type.Optional(
            Type.Object(
              {
                long_query_threshold: Type.Optional(Duration),
                top_tables: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
                top_statements: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
              },
              { additionalProperties: false },
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    postgres: Type.Optional(Type.Array(UrlTarget)),
    pgbouncer: Type.Optional(Type.Array(UrlTarget)),
    redis: Type.Optional(Type.Array(RedisTarget)),
    faiss: Type.Optional(Type.Array(FaissIndex)),
    backups: Type.Optional(
      Type.Object(
        {
          directory: Type.String({ minLength: 1 }),
          kinds: BackupKinds,
          verify_interval: Type.Optional(Duration),
          // What backup-run keeps of its own backups (those with a manifest), per kind and source.
          retention: Type.Optional(
            Type.Object(
              {
                keep: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'newest backups kept per kind and source' })),
                max_age: Type.Optional(Duration),
              },
              { additionalProperties: false },
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    elasticsearch: Type.Optional(Type.Array(ElasticsearchTarget)),
    certificates: Type.Optional(Type.Array(Certificate)),
    state: Type.Optional(
      Type.Object(
        {
          // A shared Postgres for the queue and the log (several replicas); without it an
          // embedded PGlite database in `path` (one replica only).
          url: Type.Optional(Type.String({ minLength: 1 })),
          url_file: Type.Optional(Type.String({ minLength: 1 })),
          path: Type.Optional(Type.String({ minLength: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
    webhook: Type.Optional(
      Type.Object(
        {
          token_file: Type.Optional(Type.String({ minLength: 1 })),
          basic_auth: Type.Optional(
            Type.Object(
              { username: Type.String({ minLength: 1 }), password: Type.Optional(Type.String({ minLength: 1, ...Secret })), password_file: Type.Optional(Type.String({ minLength: 1 })) },
              { additionalProperties: false },
            ),
          ),
          allow_unauthenticated: Type.Optional(Type.Boolean()),
          max_body: Type.Optional(Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, description: 'bytes' })),
        },
        { additionalProperties: false },
      ),
    ),
    remediation: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean()),
          rules_dir: Type.Optional(Type.String({ minLength: 1 })),
          dry_run: Type.Optional(Type.Boolean()),
          concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 32 })),
          budget: Type.Optional(
            Type.Object({ max_actions: Type.Integer({ minimum: 1 }), per: Duration }, { additionalProperties: false }),
          ),
          circuit: Type.Optional(
            Type.Object({ failures: Type.Integer({ minimum: 1 }), reset_after: Duration }, { additionalProperties: false }),
          ),
          job_ttl: Type.Optional(Duration),
          action_timeout: Type.Optional(Duration),
          replica_name: Type.Optional(Type.String({ minLength: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
    actions: Type.Optional(
      Type.Object(
        {
          redis_warm: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), WarmQuery)),
          exec: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), ExecProgram)),
          cleanup: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), CleanupEntry)),
          archive: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), ArchiveEntry)),
          // Sessions of these users / applications are never cancelled or terminated.
          protected_users: Type.Optional(Type.Array(Type.String())),
          protected_applications: Type.Optional(Type.Array(Type.String())),
        },
        { additionalProperties: false },
      ),
    ),
    grafana: Type.Optional(
      Type.Object(
        {
          url: Type.String({ minLength: 1 }),
          token: Type.Optional(Type.String({ minLength: 1, ...Secret })),
          token_file: Type.Optional(Type.String({ minLength: 1 })),
          dashboard_uid: Type.Optional(Type.String()),
          tags: Type.Optional(Type.Array(Type.String())),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
type RawConfig = Static<typeof ConfigSchema>;

export interface NamedTarget {
  name: string;
  url: string;
}
export interface RedisTargetConfig extends NamedTarget {
  cacheDbs: number[];
}

/** The validated config, with defaults applied and durations in milliseconds. */
export interface Config {
  file: string;
  server: { host: string; port: number; scrapeTimeoutMs: number; scrapeTimeoutOffsetMs: number };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  collectors: {
    /** Collectors switched on beyond the default set, and default ones switched off. */
    enabled: string[];
    disabled: string[];
    postgres: { longQueryThresholdMs: number; topTables: number; topStatements: number };
  };
  postgres: NamedTarget[];
  pgbouncer: NamedTarget[];
  redis: RedisTargetConfig[];
  faiss: FaissIndexConfig[];
  /** Undefined when no backups section is configured. */
  backups: BackupsConfig | undefined;
  elasticsearch: ElasticsearchConfig[];
  certificates: CertificateConfig[];
  state: { url: string | undefined; path: string };
  webhook: {
    /** Bearer token (HOUSEKEEPER_WEBHOOK_TOKEN or token_file); undefined when not configured. */
    token: string | undefined;
    basicAuth: { username: string; password: string } | undefined;
    allowUnauthenticated: boolean;
    maxBodyBytes: number;
  };
  remediation: {
    enabled: boolean;
    rulesDir: string;
    dryRun: boolean;
    concurrency: number;
    budget: { maxActions: number; perMs: number };
    circuit: { failures: number; resetAfterMs: number };
    jobTtlMs: number;
    /** Longest an action may run (dumps and restores are long); default 1h. */
    actionTimeoutMs: number;
    replicaName: string;
  };
  actions: {
    redisWarm: Record<string, WarmQueryConfig>;
    exec: Record<string, ExecProgramConfig>;
    cleanup: Record<string, CleanupConfig>;
    archive: Record<string, ArchiveConfig>;
    protectedUsers: string[];
    protectedApplications: string[];
  };
  grafana: { url: string; token: string | undefined; dashboardUid: string | undefined; tags: string[] } | undefined;
}

export interface ExecProgramConfig {
  argv: string[];
  timeoutMs: number;
  envFromLabels: string[];
  cwd: string | undefined;
  verifyArgv: string[] | undefined;
}

export interface WarmQueryConfig {
  postgres: string;
  sql: string;
  keyColumn: string;
  valueColumn: string;
  redis: string;
  db: number;
  ttlMs: number;
}

export interface CleanupConfig {
  postgres: string;
  /** Undefined: the table is looked up in every schema and must be unique. */
  schema: string | undefined;
  table: string;
  column: string;
  olderThanMs: number;
  batchSize: number;
  pauseMs: number;
}

export interface ArchiveConfig extends CleanupConfig {
  /** Undefined: the source table's schema. */
  archiveSchema: string | undefined;
  archiveTable: string;
  createArchive: boolean;
}

export interface FaissIndexConfig {
  name: string;
  /** Absolute path (relative paths in the file are resolved against the config's directory). */
  path: string;
  source: { target: string; table: string; idColumn: string; vectorColumn: string } | undefined;
  checkIntervalMs: number;
  recallFloor: number;
  recallSample: number;
  /** faiss-rebuild's descriptor when neither its params nor the live index give one. */
  factory?: string | undefined;
  /** faiss-rebuild's metric when the live index does not give one (default l2). */
  metric?: 'l2' | 'inner_product' | undefined;
}

export type BackupKindName = 'database' | 'vector_index' | 'configuration' | 'document_store' | 'secrets';
export const BACKUP_KINDS: readonly BackupKindName[] = ['database', 'vector_index', 'configuration', 'document_store', 'secrets'];

export interface BackupsConfig {
  directory: string;
  kinds: Partial<Record<BackupKindName, { pattern: string }>>;
  verifyIntervalMs: number;
  /** backup-run prunes its own backups per kind and source: at most `keep`, none older than maxAgeMs (the newest always stays). */
  retention: { keep: number; maxAgeMs: number | undefined };
}

export interface ElasticsearchConfig extends NamedTarget {
  indexPatterns: string[];
  retentionMs: number;
  snapshotRepository: string | undefined;
}

export type CertificateConfig =
  | { name: string; kind: 'endpoint'; host: string; port: number; serverName: string | undefined; caFile: string | undefined }
  | { name: string; kind: 'file'; file: string };

export class ConfigError extends Error {
  constructor(file: string, field: string, problem: string, line?: number) {
    const where = field === '' ? '' : ` ${field}${line !== undefined ? ` (line ${line})` : ''}:`;
    super(`invalid config ${file}:${where} ${problem}`);
    this.name = 'ConfigError';
  }
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
  const doc: Src = { doc: yamlDoc, lines: lineCounter };
  const raw: unknown = yamlDoc.toJS() ?? {};
  const expanded = expandEnv(raw, [], file, doc, env);
  checkSchema(ConfigSchema, expanded, file, doc);
  return normalise(expanded as RawConfig, file, doc, env);
}

function fieldName(path: readonly (string | number)[]): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc === '' ? p : `${acc}.${p}`), '');
}

/** The parsed YAML and its line index, so errors can name the line of a field. */
export interface Src {
  doc: Document;
  lines: LineCounter;
}

function lineOf(src: Src, path: readonly (string | number)[]): number | undefined {
  // Walk down to the deepest node that exists and report its line.
  let node: unknown = src.doc.contents;
  let offset: number | undefined;
  const mark = (n: unknown): void => {
    const range = (n as { range?: [number, number, number] } | null)?.range;
    if (range) offset = range[0];
  };
  mark(node);
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
      if (!pair) break;
      mark(pair.key);
      node = pair.value;
      mark(node);
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key];
      mark(node);
    } else break;
  }
  return offset === undefined ? undefined : src.lines.linePos(offset).line;
}

function fail(file: string, doc: Src, path: readonly (string | number)[], problem: string): never {
  throw new ConfigError(file, fieldName(path), problem, lineOf(doc, path));
}

function expandEnv(
  value: unknown,
  path: (string | number)[],
  file: string,
  doc: Src,
  env: NodeJS.ProcessEnv,
): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) fail(file, doc, path, `environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, [...path, i], file, doc, env));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, [...path, k], file, doc, env);
    return out;
  }
  return value;
}

export function checkSchema(schema: TSchema, value: unknown, file: string, doc: Src, base: (string | number)[] = []): void {
  const err = Value.Errors(schema, value).First();
  if (!err) return;
  const path = [
    ...base,
    ...err.path
      .split('/')
      .filter((p) => p !== '')
      .map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~'))),
  ];
  let problem = err.message;
  if (err.type === ValueErrorType.ObjectAdditionalProperties) {
    // The path ends at the unknown key; the schema is the object that refused it.
    const allowed = Object.keys((err.schema as { properties?: object }).properties ?? {});
    problem = `unknown key "${String(path[path.length - 1])}" (allowed: ${allowed.join(', ')})`;
  } else if (err.schema.description) {
    problem = `${err.message} (${err.schema.description})`;
  }
  fail(file, doc, path, problem);
}

function duration(file: string, doc: Src, path: (string | number)[], text: string | undefined, dflt: number): number {
  if (text === undefined) return dflt;
  try {
    return parseDuration(text);
  } catch (err) {
    fail(file, doc, path, (err as Error).message);
  }
}

function resolveUrl(
  t: { name: string; url?: string | undefined; url_file?: string | undefined },
  path: (string | number)[],
  protocols: string[],
  file: string,
  doc: Src,
): string {
  if ((t.url === undefined) === (t.url_file === undefined)) {
    fail(file, doc, path, 'give exactly one of url and url_file');
  }
  let url = t.url;
  const fieldPath = [...path, t.url !== undefined ? 'url' : 'url_file'];
  if (url === undefined && t.url_file !== undefined) {
    try {
      url = readFileSync(resolve(file, '..', t.url_file), 'utf8').trim();
    } catch (err) {
      fail(file, doc, fieldPath, `cannot read ${t.url_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  let parsed: URL;
  try {
    parsed = new URL(url ?? '');
  } catch {
    // Never echo the URL itself: it may hold a password.
    fail(file, doc, fieldPath, `not a valid URL (expected ${protocols.map((p) => `${p}//…`).join(' or ')})`);
  }
  if (!protocols.includes(parsed.protocol)) {
    fail(file, doc, fieldPath, `URL scheme must be ${protocols.join(' or ')}, got ${parsed.protocol}`);
  }
  if (parsed.password) registerSecret(decodeURIComponent(parsed.password));
  return url as string;
}

function uniqueNames(list: { name: string }[], section: string, file: string, doc: Src): void {
  const seen = new Set<string>();
  list.forEach((t, i) => {
    if (seen.has(t.name)) fail(file, doc, [section, i, 'name'], `duplicate target name "${t.name}"`);
    seen.add(t.name);
  });
}

function normalise(raw: RawConfig, file: string, doc: Src, env: NodeJS.ProcessEnv): Config {
  const pgUrl = ['postgres:', 'postgresql:'];
  const postgres = (raw.postgres ?? []).map((t, i) => ({ name: t.name, url: resolveUrl(t, ['postgres', i], pgUrl, file, doc) }));
  const pgbouncer = (raw.pgbouncer ?? []).map((t, i) => ({ name: t.name, url: resolveUrl(t, ['pgbouncer', i], pgUrl, file, doc) }));
  const redis = (raw.redis ?? []).map((t, i) => ({
    name: t.name,
    url: resolveUrl(t, ['redis', i], ['redis:', 'rediss:'], file, doc),
    cacheDbs: t.cache_dbs ?? [],
  }));
  uniqueNames(postgres, 'postgres', file, doc);
  uniqueNames(pgbouncer, 'pgbouncer', file, doc);
  uniqueNames(redis, 'redis', file, doc);
  const base = resolve(file, '..');
  const faiss: FaissIndexConfig[] = (raw.faiss ?? []).map((f, i) => {
    if (f.source && !postgres.some((p) => p.name === f.source?.target)) {
      fail(file, doc, ['faiss', i, 'source', 'target'], `no postgres target named "${f.source.target}"`);
    }
    return {
      name: f.name,
      path: resolve(base, f.path),
      source: f.source && { target: f.source.target, table: f.source.table, idColumn: f.source.id_column, vectorColumn: f.source.vector_column },
      checkIntervalMs: duration(file, doc, ['faiss', i, 'check_interval'], f.check_interval, 300_000),
      recallFloor: f.recall_floor ?? 0.9,
      recallSample: f.recall_sample ?? 100,
      factory: f.factory,
      metric: f.metric,
    };
  });
  uniqueNames(faiss, 'faiss', file, doc);
  const backups: BackupsConfig | undefined = raw.backups && {
    directory: resolve(base, raw.backups.directory),
    kinds: raw.backups.kinds,
    verifyIntervalMs: duration(file, doc, ['backups', 'verify_interval'], raw.backups.verify_interval, 600_000),
    retention: {
      keep: raw.backups.retention?.keep ?? 7,
      maxAgeMs:
        raw.backups.retention?.max_age === undefined
          ? undefined
          : duration(file, doc, ['backups', 'retention', 'max_age'], raw.backups.retention.max_age, 0) ||
            fail(file, doc, ['backups', 'retention', 'max_age'], 'must be longer than 0'),
    },
  };
  const elasticsearch: ElasticsearchConfig[] = (raw.elasticsearch ?? []).map((t, i) => ({
    name: t.name,
    url: resolveUrl(t, ['elasticsearch', i], ['http:', 'https:'], file, doc),
    indexPatterns: t.index_patterns ?? [],
    retentionMs: duration(file, doc, ['elasticsearch', i, 'retention'], t.retention, 30 * 86_400_000),
    snapshotRepository: t.snapshot_repository,
  }));
  uniqueNames(elasticsearch, 'elasticsearch', file, doc);
  const certificates: CertificateConfig[] = (raw.certificates ?? []).map((c, i) => {
    if ((c.host === undefined) === (c.file === undefined)) fail(file, doc, ['certificates', i], 'give exactly one of host (with port) and file');
    if (c.file !== undefined) {
      if (c.ca_file !== undefined) fail(file, doc, ['certificates', i, 'ca_file'], 'ca_file applies to endpoints (host), not to files');
      return { name: c.name, kind: 'file', file: resolve(base, c.file) };
    }
    const caFile = c.ca_file === undefined ? undefined : resolve(base, c.ca_file);
    return { name: c.name, kind: 'endpoint', host: c.host as string, port: c.port ?? 443, serverName: c.server_name, caFile };
  });
  uniqueNames(certificates, 'certificates', file, doc);
  const s = raw.server ?? {};
  const pgc = raw.collectors?.postgres ?? {};
  const readSecretFile = (path: (string | number)[], f: string): string => {
    try {
      const v = readFileSync(resolve(base, f), 'utf8').trim();
      registerSecret(v);
      return v;
    } catch (err) {
      fail(file, doc, path, `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const st = raw.state ?? {};
  const stateUrl =
    st.url !== undefined || st.url_file !== undefined
      ? resolveUrl({ name: 'state', url: st.url, url_file: st.url_file }, ['state'], pgUrl, file, doc)
      : undefined;
  const wh = raw.webhook ?? {};
  let token = env['HOUSEKEEPER_WEBHOOK_TOKEN'];
  if (wh.token_file !== undefined) token = readSecretFile(['webhook', 'token_file'], wh.token_file);
  if (token !== undefined && token.length < 16) fail(file, doc, ['webhook'], 'the webhook token must be at least 16 characters');
  registerSecret(token);
  let basicAuth: Config['webhook']['basicAuth'];
  if (wh.basic_auth) {
    const ba = wh.basic_auth;
    if ((ba.password === undefined) === (ba.password_file === undefined)) fail(file, doc, ['webhook', 'basic_auth'], 'give exactly one of password and password_file');
    const password = ba.password ?? readSecretFile(['webhook', 'basic_auth', 'password_file'], ba.password_file as string);
    registerSecret(password);
    basicAuth = { username: ba.username, password };
  }
  const rem = raw.remediation ?? {};
  const redisWarm: Record<string, WarmQueryConfig> = {};
  for (const [name, w] of Object.entries(raw.actions?.redis_warm ?? {})) {
    const path = ['actions', 'redis_warm', name];
    if (!postgres.some((p) => p.name === w.postgres)) fail(file, doc, [...path, 'postgres'], `no postgres target named "${w.postgres}"`);
    if (!redis.some((r) => r.name === w.redis)) fail(file, doc, [...path, 'redis'], `no redis target named "${w.redis}"`);
    redisWarm[name] = {
      postgres: w.postgres,
      sql: w.sql,
      keyColumn: w.key_column ?? 'key',
      valueColumn: w.value_column ?? 'value',
      redis: w.redis,
      db: w.db ?? 0,
      ttlMs: duration(file, doc, [...path, 'ttl'], w.ttl, 3_600_000),
    };
  }
  const exec: Record<string, ExecProgramConfig> = {};
  for (const [name, x] of Object.entries(raw.actions?.exec ?? {})) {
    exec[name] = {
      argv: x.argv,
      timeoutMs: duration(file, doc, ['actions', 'exec', name, 'timeout'], x.timeout, 300_000),
      envFromLabels: x.env_from_labels ?? [],
      cwd: x.cwd === undefined ? undefined : resolve(base, x.cwd),
      verifyArgv: x.verify_argv,
    };
  }
  const cleanupEntry = (section: 'cleanup' | 'archive', name: string, c: Static<typeof CleanupEntry>): CleanupConfig => {
    const path = ['actions', section, name];
    if (!postgres.some((p) => p.name === c.postgres)) fail(file, doc, [...path, 'postgres'], `no postgres target named "${c.postgres}"`);
    const olderThanMs = duration(file, doc, [...path, 'older_than'], c.older_than, 0);
    // A typo such as "0" or "90s" would delete nearly everything: an hour is the least accepted.
    if (olderThanMs < 3_600_000) fail(file, doc, [...path, 'older_than'], 'must be at least 1h');
    return {
      postgres: c.postgres,
      schema: c.schema,
      table: c.table,
      column: c.column,
      olderThanMs,
      batchSize: c.batch_size ?? 1000,
      pauseMs: duration(file, doc, [...path, 'pause'], c.pause, 100),
    };
  };
  const cleanup: Record<string, CleanupConfig> = {};
  for (const [name, c] of Object.entries(raw.actions?.cleanup ?? {})) cleanup[name] = cleanupEntry('cleanup', name, c);
  const archive: Record<string, ArchiveConfig> = {};
  for (const [name, a] of Object.entries(raw.actions?.archive ?? {})) {
    const { archive_table, archive_schema, create_archive, ...rest } = a;
    const common = cleanupEntry('archive', name, rest);
    if (archive_table === a.table && (archive_schema ?? a.schema) === a.schema) {
      fail(file, doc, ['actions', 'archive', name, 'archive_table'], 'the archive table must not be the source table');
    }
    archive[name] = { ...common, archiveSchema: archive_schema, archiveTable: archive_table, createArchive: create_archive ?? true };
  }
  let grafana: Config['grafana'];
  if (raw.grafana) {
    const g = raw.grafana;
    try {
      const u = new URL(g.url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    } catch {
      fail(file, doc, ['grafana', 'url'], 'not an http(s) URL');
    }
    const gtoken = g.token ?? (g.token_file !== undefined ? readSecretFile(['grafana', 'token_file'], g.token_file) : undefined);
    registerSecret(gtoken);
    grafana = { url: g.url.replace(/\/$/, ''), token: gtoken, dashboardUid: g.dashboard_uid, tags: g.tags ?? ['housekeeper'] };
  }
  return {
    file,
    state: { url: stateUrl, path: resolve(base, st.path ?? 'var/state') },
    webhook: {
      token,
      basicAuth,
      allowUnauthenticated: wh.allow_unauthenticated ?? false,
      maxBodyBytes: wh.max_body ?? 1024 * 1024,
    },
    remediation: {
      // On when the config has a remediation section; an exporter-only deployment has none.
      enabled: rem.enabled ?? raw.remediation !== undefined,
      rulesDir: resolve(base, rem.rules_dir ?? 'rules'),
      dryRun: rem.dry_run ?? false,
      concurrency: rem.concurrency ?? 2,
      budget: rem.budget
        ? { maxActions: rem.budget.max_actions, perMs: duration(file, doc, ['remediation', 'budget', 'per'], rem.budget.per, 3_600_000) }
        : { maxActions: 20, perMs: 3_600_000 },
      circuit: rem.circuit
        ? { failures: rem.circuit.failures, resetAfterMs: duration(file, doc, ['remediation', 'circuit', 'reset_after'], rem.circuit.reset_after, 21_600_000) }
        : { failures: 3, resetAfterMs: 21_600_000 },
      jobTtlMs: duration(file, doc, ['remediation', 'job_ttl'], rem.job_ttl, 3_600_000),
      actionTimeoutMs: duration(file, doc, ['remediation', 'action_timeout'], rem.action_timeout, 3_600_000),
      replicaName: rem.replica_name ?? env['HOSTNAME'] ?? hostname(),
    },
    actions: {
      redisWarm,
      exec,
      cleanup,
      archive,
      protectedUsers: raw.actions?.protected_users ?? [],
      protectedApplications: raw.actions?.protected_applications ?? ['housekeeper'],
    },
    grafana,
    server: {
      host: s.host ?? '127.0.0.1',
      port: s.port ?? 9847,
      scrapeTimeoutMs: duration(file, doc, ['server', 'scrape_timeout'], s.scrape_timeout, 10_000),
      scrapeTimeoutOffsetMs: duration(file, doc, ['server', 'scrape_timeout_offset'], s.scrape_timeout_offset, 500),
    },
    logLevel: (raw.log?.level ?? 'info') as Config['logLevel'],
    collectors: {
      enabled: raw.collectors?.enabled ?? [],
      disabled: raw.collectors?.disabled ?? [],
      postgres: {
        longQueryThresholdMs: duration(file, doc, ['collectors', 'postgres', 'long_query_threshold'], pgc.long_query_threshold, 5_000),
        topTables: pgc.top_tables ?? 20,
        topStatements: pgc.top_statements ?? 10,
      },
    },
    postgres,
    pgbouncer,
    redis,
    faiss,
    backups,
    elasticsearch,
    certificates,
  };
}
