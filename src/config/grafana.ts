import { Type, type Static } from '@sinclair/typebox';
import { registerSecret } from '../log.ts';
import { Secret, failAt, readSecretFile, type Ctx } from './schema.ts';

// grafana (optional): where remediations are annotated.

export const GrafanaSchema = Type.Object(
  {
    url: Type.String({ minLength: 1, description: 'http or https URL of Grafana' }),
    token: Type.Optional(Type.String({ minLength: 1, ...Secret })),
    token_file: Type.Optional(Type.String({ minLength: 1, description: 'file holding the API token' })),
    dashboard_uid: Type.Optional(Type.String({ description: 'annotate this dashboard only; default: organisation-wide' })),
    tags: Type.Array(Type.String(), { default: ['housekeeper'], description: 'tags of every annotation' }),
  },
  { additionalProperties: false, description: 'optional: an annotation per remediation' },
);

// Hand-written: token and token_file become one token.
export interface GrafanaConfig {
  url: string;
  token: string | undefined;
  dashboardUid: string | undefined;
  tags: string[];
}

/** Undefined when the file has no grafana section. */
export function normaliseGrafana(g: Static<typeof GrafanaSchema> | undefined, ctx: Ctx): GrafanaConfig | undefined {
  if (g === undefined) return undefined;
  try {
    const u = new URL(g.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    failAt(ctx, ['grafana', 'url'], 'not an http(s) URL');
  }
  const token = g.token ?? (g.token_file !== undefined ? readSecretFile(ctx, ['grafana', 'token_file'], g.token_file) : undefined);
  registerSecret(token);
  return { url: g.url.replace(/\/$/, ''), token, dashboardUid: g.dashboard_uid, tags: g.tags };
}
