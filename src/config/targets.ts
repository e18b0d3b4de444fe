import { Type, type Static } from '@sinclair/typebox';
import { Name, resolvePath, resolveUrl, uniqueNames, type Ctx } from './schema.ts';

// postgres, pgbouncer and redis: the servers the exporter watches, each by name and URL.

const urlFields = {
  name: Name,
  url: Type.Optional(Type.String({ minLength: 1, description: 'connection URL; or url_file' })),
  url_file: Type.Optional(Type.String({ minLength: 1, description: 'file holding the URL, relative to the config file' })),
};

export const UrlTargetSchema = Type.Object(urlFields, { additionalProperties: false });

export const PgBouncerTargetSchema = Type.Object(
  {
    ...urlFields,
    log_file: Type.Optional(
      Type.String({
        minLength: 1,
        description: "PgBouncer's logfile, relative to the config file; read for pgbouncer_errors_count (followed across rotation)",
      }),
    ),
  },
  { additionalProperties: false },
);

export const RedisTargetSchema = Type.Object(
  {
    ...urlFields,
    cache_dbs: Type.Array(Type.Integer({ minimum: 0, maximum: 15 }), {
      default: [],
      description: 'databases that hold only cache data; remediation may flush these and no others',
    }),
  },
  { additionalProperties: false },
);

export const PG_PROTOCOLS = ['postgres:', 'postgresql:'];

// Hand-written: url and url_file become one resolved url.
export interface NamedTarget {
  name: string;
  url: string;
}
export interface PgBouncerTargetConfig extends NamedTarget {
  /** Absolute path of PgBouncer's log file, when given. */
  logFile: string | undefined;
}
export interface RedisTargetConfig extends NamedTarget {
  cacheDbs: number[];
}

/** postgres or pgbouncer: the list with URLs resolved and names unique. */
export function normalisePgTargets(section: 'postgres' | 'pgbouncer', raw: Static<typeof UrlTargetSchema>[], ctx: Ctx): NamedTarget[] {
  const out = raw.map((t, i) => ({ name: t.name, url: resolveUrl(ctx, t, [section, i], PG_PROTOCOLS) }));
  uniqueNames(ctx, out, section);
  return out;
}

export function normalisePgBouncer(raw: Static<typeof PgBouncerTargetSchema>[], ctx: Ctx): PgBouncerTargetConfig[] {
  const withUrls = normalisePgTargets('pgbouncer', raw, ctx);
  return withUrls.map((t, i) => {
    const logFile = raw[i]?.log_file;
    return { ...t, logFile: logFile === undefined ? undefined : resolvePath(ctx, logFile) };
  });
}

export function normaliseRedis(raw: Static<typeof RedisTargetSchema>[], ctx: Ctx): RedisTargetConfig[] {
  const out = raw.map((t, i) => ({ name: t.name, url: resolveUrl(ctx, t, ['redis', i], ['redis:', 'rediss:']), cacheDbs: t.cache_dbs }));
  uniqueNames(ctx, out, 'redis');
  return out;
}
