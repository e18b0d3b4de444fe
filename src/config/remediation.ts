import { hostname } from 'node:os';
import { Type, type Static } from '@sinclair/typebox';
import { registerSecret } from '../log.ts';
import { Duration, Secret, failAt, normaliseFields, readSecretFile, resolvePath, resolveUrl, type Ctx, type Normalised } from './schema.ts';
import { PG_PROTOCOLS } from './targets.ts';

// remediation, state and webhook: the engine, the database that keeps its queue and log,
// and how Alertmanager authenticates to it.

export const RemediationSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ description: 'default: on when the file has a remediation section' })),
    rules_dir: Type.String({ minLength: 1, default: 'rules', description: 'directory of rule files, relative to the config file' }),
    dry_run: Type.Boolean({ default: false, description: 'record what would happen, do nothing' }),
    concurrency: Type.Integer({ minimum: 1, maximum: 32, default: 2, description: 'jobs at once per replica; one at a time per target, always' }),
    budget: Type.Object(
      {
        max_actions: Type.Integer({ minimum: 1, default: 20, description: 'actions run fleet-wide per window' }),
        per: Duration('the budget window', '1h'),
      },
      { additionalProperties: false, default: {}, description: 'fleet-wide, against alert storms' },
    ),
    circuit: Type.Object(
      {
        failures: Type.Integer({ minimum: 1, default: 3, description: 'consecutive failures that stop a rule' }),
        reset_after: Duration('how long a stopped rule stays stopped', '6h'),
      },
      { additionalProperties: false, default: {}, description: 'consecutive failures stop a rule for a while' },
    ),
    job_ttl: Duration('a queued job not started by then expires: silenced alerts never resolve', '1h'),
    action_timeout: Duration('an action running longer is aborted; dumps and restores are long', '1h'),
    replica_name: Type.Optional(Type.String({ minLength: 1, description: 'names this replica in the log; default $HOSTNAME, else the host name' })),
  },
  { additionalProperties: false, default: {}, description: 'the remediation engine: on when this section is present' },
);

// Hand-written around the derived part: `enabled` and `replicaName` get defaults that depend on
// the file and the environment, so they are always set after normalising.
export type RemediationConfig = Omit<Normalised<Static<typeof RemediationSchema>>, 'enabled' | 'replicaName'> & {
  enabled: boolean;
  replicaName: string;
};

export function normaliseRemediation(raw: Static<typeof RemediationSchema>, ctx: Ctx): RemediationConfig {
  const out = normaliseFields(RemediationSchema, raw, ['remediation'], ctx);
  return {
    ...out,
    // On when the config has a remediation section; an exporter-only deployment has none.
    enabled: raw.enabled ?? ctx.given.has('remediation'),
    rulesDir: resolvePath(ctx, raw.rules_dir),
    replicaName: raw.replica_name ?? ctx.env['HOSTNAME'] ?? hostname(),
  };
}

export const StateSchema = Type.Object(
  {
    url: Type.Optional(Type.String({ minLength: 1, description: 'a shared Postgres for the queue and the log, for several replicas' })),
    url_file: Type.Optional(Type.String({ minLength: 1, description: 'file holding the URL, relative to the config file' })),
    path: Type.String({ minLength: 1, default: 'var/state', description: 'without url: an embedded PGlite database here, for one replica only' }),
  },
  { additionalProperties: false, default: {}, description: 'the database that keeps the queue and the remediation log' },
);

// Hand-written: url and url_file become one resolved url (or none: the embedded database).
export interface StateConfig {
  url: string | undefined;
  path: string;
}

export function normaliseState(raw: Static<typeof StateSchema>, ctx: Ctx): StateConfig {
  const given = raw.url !== undefined || raw.url_file !== undefined;
  return { url: given ? resolveUrl(ctx, raw, ['state'], PG_PROTOCOLS) : undefined, path: resolvePath(ctx, raw.path) };
}

export const WebhookSchema = Type.Object(
  {
    token_file: Type.Optional(Type.String({ minLength: 1, description: 'file holding the bearer token, else HOUSEKEEPER_WEBHOOK_TOKEN; at least 16 characters' })),
    basic_auth: Type.Optional(
      Type.Object(
        {
          username: Type.String({ minLength: 1, description: 'user name Alertmanager sends' }),
          password: Type.Optional(Type.String({ minLength: 1, ...Secret })),
          password_file: Type.Optional(Type.String({ minLength: 1, description: 'file holding the password' })),
        },
        { additionalProperties: false, description: 'HTTP basic authentication, besides or instead of the token' },
      ),
    ),
    allow_unauthenticated: Type.Boolean({ default: false, description: 'without credentials the service refuses to start, unless this is true' }),
    max_body: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: 1024 * 1024, description: 'bytes' }),
  },
  { additionalProperties: false, default: {}, description: 'how Alertmanager authenticates to POST /hooks/alertmanager' },
);

// Hand-written: the token comes from the environment or a file, passwords from files, and
// max_body is read in bytes.
export interface WebhookConfig {
  /** Bearer token (HOUSEKEEPER_WEBHOOK_TOKEN or token_file); undefined when not configured. */
  token: string | undefined;
  basicAuth: { username: string; password: string } | undefined;
  allowUnauthenticated: boolean;
  maxBodyBytes: number;
}

export function normaliseWebhook(raw: Static<typeof WebhookSchema>, ctx: Ctx): WebhookConfig {
  let token = ctx.env['HOUSEKEEPER_WEBHOOK_TOKEN'];
  if (raw.token_file !== undefined) token = readSecretFile(ctx, ['webhook', 'token_file'], raw.token_file);
  if (token !== undefined && token.length < 16) failAt(ctx, ['webhook'], 'the webhook token must be at least 16 characters');
  registerSecret(token);
  let basicAuth: WebhookConfig['basicAuth'];
  if (raw.basic_auth) {
    const ba = raw.basic_auth;
    if ((ba.password === undefined) === (ba.password_file === undefined)) failAt(ctx, ['webhook', 'basic_auth'], 'give exactly one of password and password_file');
    const password = ba.password ?? readSecretFile(ctx, ['webhook', 'basic_auth', 'password_file'], ba.password_file as string);
    registerSecret(password);
    basicAuth = { username: ba.username, password };
  }
  return { token, basicAuth, allowUnauthenticated: raw.allow_unauthenticated, maxBodyBytes: raw.max_body };
}
