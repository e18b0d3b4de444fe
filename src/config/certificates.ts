import { Type, type Static } from '@sinclair/typebox';
import { Name, failAt, resolvePath, uniqueNames, type Ctx } from './schema.ts';

// certificates: TLS endpoints (host and port) or certificate files whose expiry is watched.

export const CertificateSchema = Type.Object(
  {
    name: Name,
    host: Type.Optional(Type.String({ minLength: 1, description: 'endpoint host; or file' })),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 443, description: 'endpoint port' }),
    server_name: Type.Optional(Type.String({ minLength: 1, description: 'SNI name, when not the host' })),
    ca_file: Type.Optional(Type.String({ minLength: 1, description: "PEM bundle trusted besides Node's roots when verifying an endpoint's chain, for private CAs" })),
    file: Type.Optional(Type.String({ minLength: 1, description: 'PEM certificate file; or host' })),
  },
  { additionalProperties: false },
);

// Hand-written: the file's flat entry becomes one of two kinds, each with only its own fields.
export type CertificateConfig =
  | { name: string; kind: 'endpoint'; host: string; port: number; serverName: string | undefined; caFile: string | undefined }
  | { name: string; kind: 'file'; file: string };

export function normaliseCertificates(raw: Static<typeof CertificateSchema>[], ctx: Ctx): CertificateConfig[] {
  const out = raw.map((c, i): CertificateConfig => {
    if ((c.host === undefined) === (c.file === undefined)) failAt(ctx, ['certificates', i], 'give exactly one of host (with port) and file');
    if (c.file !== undefined) {
      if (c.ca_file !== undefined) failAt(ctx, ['certificates', i, 'ca_file'], 'ca_file applies to endpoints (host), not to files');
      return { name: c.name, kind: 'file', file: resolvePath(ctx, c.file) };
    }
    const caFile = c.ca_file === undefined ? undefined : resolvePath(ctx, c.ca_file);
    return { name: c.name, kind: 'endpoint', host: c.host as string, port: c.port, serverName: c.server_name, caFile };
  });
  uniqueNames(ctx, out, 'certificates');
  return out;
}
