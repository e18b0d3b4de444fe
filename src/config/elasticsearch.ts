import { Type, type Static } from '@sinclair/typebox';
import { runbook } from '../runbook.ts';
import { Duration, Name, durationText, normaliseFields, resolveUrl, uniqueNames, type Ctx, type Normalised } from './schema.ts';

// elasticsearch: the log clusters, their index patterns and retention.

export const ElasticsearchSchema = Type.Object(
  {
    name: Name,
    url: Type.Optional(Type.String({ minLength: 1, description: 'http or https URL of the cluster; or url_file' })),
    url_file: Type.Optional(Type.String({ minLength: 1, description: 'file holding the URL, relative to the config file' })),
    index_patterns: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'index patterns retention and the actions apply to' }),
    retention: Duration("indices older than this are deleted; the default is the runbook's", durationText(runbook.esRetentionSeconds)),
    snapshot_repository: Type.Optional(Type.String({ minLength: 1, description: 'repository es-snapshot writes to' })),
  },
  { additionalProperties: false },
);

// Hand-written around the derived part: url and url_file become one resolved url.
export type ElasticsearchConfig = Omit<Normalised<Static<typeof ElasticsearchSchema>>, 'url' | 'urlFile'> & { url: string };

export function normaliseElasticsearch(raw: Static<typeof ElasticsearchSchema>[], ctx: Ctx): ElasticsearchConfig[] {
  const out = raw.map((t, i) => {
    const url = resolveUrl(ctx, t, ['elasticsearch', i], ['http:', 'https:']);
    const { url: _url, urlFile: _file, ...rest } = normaliseFields(ElasticsearchSchema, t, ['elasticsearch', i], ctx);
    return { ...rest, url };
  });
  uniqueNames(ctx, out, 'elasticsearch');
  return out;
}

