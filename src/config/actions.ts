import { Type, type Static } from '@sinclair/typebox';
import { Duration, Ref, entryOptions, failAt, mustExist, normaliseFields, resolvePath, type Ctx, type Normalised } from './schema.ts';
import type { NamedTarget, RedisTargetConfig } from './targets.ts';

// actions: what the actions may touch, named in config (never taken from alert labels):
// cache-warm queries, exec programs, old-data cleanup and archiving, protected sessions.

const WarmQuery = Type.Object(
  {
    postgres: Ref('postgres'),
    sql: Type.String({ minLength: 1, description: 'trusted SQL from the config file, never from alerts; returns key and value columns' }),
    key_column: Type.String({ minLength: 1, default: 'key', description: 'column of the Redis key' }),
    value_column: Type.String({ minLength: 1, default: 'value', description: 'column of the Redis value' }),
    redis: Ref('redis'),
    db: Type.Integer({ minimum: 0, maximum: 15, default: 0, description: 'Redis database written' }),
    ttl: Duration('expiry of the warmed keys', '1h'),
  },
  entryOptions,
);

// A program the exec action may run: an argv array (no shell), a timeout, and the alert
// labels it may receive, only as environment variables HK_LABEL_<NAME>.
const ExecProgram = Type.Object(
  {
    argv: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'the program and its arguments, no shell' }),
    timeout: Duration('the program is killed after it', '5m'),
    env_from_labels: Type.Array(Type.String({ pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' }), {
      default: [],
      description: 'alert labels passed, as environment variables HK_LABEL_<NAME>',
    }),
    cwd: Type.Optional(Type.String({ minLength: 1, description: 'working directory, relative to the config file' })),
    verify_argv: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'a check run after the program: exit 0 means the condition cleared' })),
  },
  entryOptions,
);

// Old-data cleanup (cleanup-old-rows) and archiving (archive-old-rows): which table, which
// time column and how old. Config only, never alert input: a rule's params name the entry.
// The actions check table and column against the catalog and quote them.
const PgIdent = (description: string) => Type.String({ minLength: 1, maxLength: 63, description });
const cleanupFields = {
  postgres: Ref('postgres'),
  schema: Type.Optional(PgIdent('schema of the table; needed when the name exists in several')),
  table: PgIdent('table, exactly as in the catalog'),
  column: PgIdent('timestamp, timestamptz or date column that dates each row'),
  older_than: Duration('rows older than this go; at least 1h'),
  batch_size: Type.Integer({ minimum: 1, maximum: 100_000, default: 1000, description: 'rows per batch, one transaction each' }),
  pause: Duration('pause between batches', '100ms'),
};
const CleanupEntry = Type.Object(cleanupFields, entryOptions);
const ArchiveEntry = Type.Object(
  {
    ...cleanupFields,
    archive_table: PgIdent('table the rows move to'),
    archive_schema: Type.Optional(PgIdent("schema of the archive table; default: the source table's")),
    create_archive: Type.Boolean({
      default: true,
      description: 'an absent archive table is created LIKE the source, unless this is false: constraints, indexes, comments; no defaults, identity or generation, so rows keep their values',
    }),
  },
  entryOptions,
);

const entryName = Type.String({ pattern: '^[A-Za-z0-9_.-]+$' });

export const ActionsSchema = Type.Object(
  {
    redis_warm: Type.Record(entryName, WarmQuery, { default: {}, description: 'redis-warm: queries whose rows are written to a Redis target' }),
    exec: Type.Record(entryName, ExecProgram, { default: {}, description: 'exec: programs the exec action may run' }),
    cleanup: Type.Record(entryName, CleanupEntry, { default: {}, description: 'cleanup-old-rows: tables and how old a row may get' }),
    archive: Type.Record(entryName, ArchiveEntry, { default: {}, description: 'archive-old-rows: tables, their archive table and how old a row may get' }),
    protected_users: Type.Array(Type.String(), { default: [], description: 'sessions of these users are never cancelled or terminated' }),
    protected_applications: Type.Array(Type.String(), { default: ['housekeeper'], description: 'sessions of these applications are never cancelled or terminated' }),
  },
  { additionalProperties: false, default: {}, description: 'what the actions may touch, named here, never taken from alert labels' },
);

export type ActionsConfig = Normalised<Static<typeof ActionsSchema>>;
export type WarmQueryConfig = Normalised<Static<typeof WarmQuery>>;
/** `cwd` is absolute. */
export type ExecProgramConfig = Normalised<Static<typeof ExecProgram>>;
/** `schema` undefined: the table is looked up in every schema and must be unique. */
export type CleanupConfig = Normalised<Static<typeof CleanupEntry>>;
/** `archiveSchema` undefined: the source table's schema. */
export type ArchiveConfig = Normalised<Static<typeof ArchiveEntry>>;

export function normaliseActions(
  raw: Static<typeof ActionsSchema>,
  targets: { postgres: readonly NamedTarget[]; redis: readonly RedisTargetConfig[] },
  ctx: Ctx,
): ActionsConfig {
  for (const [name, w] of Object.entries(raw.redis_warm)) {
    const path = ['actions', 'redis_warm', name];
    mustExist(ctx, targets.postgres, w.postgres, 'postgres', [...path, 'postgres']);
    mustExist(ctx, targets.redis, w.redis, 'redis', [...path, 'redis']);
  }
  for (const section of ['cleanup', 'archive'] as const) {
    for (const [name, c] of Object.entries(raw[section])) mustExist(ctx, targets.postgres, c.postgres, 'postgres', ['actions', section, name, 'postgres']);
  }
  const out = normaliseFields(ActionsSchema, raw, ['actions'], ctx);
  for (const section of ['cleanup', 'archive'] as const) {
    for (const [name, c] of Object.entries(out[section])) {
      // A typo such as "0" or "90s" would delete nearly everything: an hour is the least accepted.
      if (c.olderThanMs < 3_600_000) failAt(ctx, ['actions', section, name, 'older_than'], 'must be at least 1h');
    }
  }
  for (const [name, a] of Object.entries(out.archive)) {
    if (a.archiveTable === a.table && (a.archiveSchema ?? a.schema) === a.schema) {
      failAt(ctx, ['actions', 'archive', name, 'archive_table'], 'the archive table must not be the source table');
    }
  }
  for (const x of Object.values(out.exec)) if (x.cwd !== undefined) x.cwd = resolvePath(ctx, x.cwd);
  return out;
}
