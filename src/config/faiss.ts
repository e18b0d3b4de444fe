import { Type, type Static } from '@sinclair/typebox';
import { runbook } from '../runbook.ts';
import { Duration, Name, Ref, mustExist, normaliseFields, resolvePath, uniqueNames, type Ctx, type Normalised } from './schema.ts';
import type { NamedTarget } from './targets.ts';

// faiss: the vector indexes the exporter checks and the faiss-* actions maintain.

export const FaissIndexSchema = Type.Object(
  {
    name: Name,
    path: Type.String({ minLength: 1, description: 'path of the FAISS index file' }),
    source: Type.Optional(
      Type.Object(
        {
          target: Ref('postgres'),
          table: Type.String({ minLength: 1, description: 'table of the vectors' }),
          id_column: Type.String({ minLength: 1, description: 'integer id of each vector, its FAISS row id' }),
          vector_column: Type.String({ minLength: 1, description: 'real[] column of the vectors' }),
        },
        { additionalProperties: false, description: "the index's source of truth: rows in a Postgres table with a real[] vector column" },
      ),
    ),
    factory: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        pattern: '^[A-Za-z0-9_,.=]+$',
        description: 'FAISS index_factory descriptor, e.g. IVF1024,Flat',
      }),
    ),
    metric: Type.Optional(
      Type.Union([Type.Literal('l2'), Type.Literal('inner_product')], {
        description: "faiss-rebuild's metric when the live index does not give one; l2 without either",
      }),
    ),
    check_interval: Duration('how often the index is loaded, probed and its recall measured, off the scrape path', '5m'),
    recall_floor: Type.Number({ minimum: 0, maximum: 1, default: runbook.faissRecallFloorDefault, description: 'FaissRecallLow fires under it' }),
    recall_sample: Type.Integer({ minimum: 1, maximum: 10_000, default: 100, description: 'queries sampled to measure recall' }),
  },
  { additionalProperties: false },
);

/** `path` is absolute (relative paths in the file are resolved against the config's directory);
 *  `factory` is faiss-rebuild's descriptor when neither its params nor the live index give one. */
export type FaissIndexConfig = Normalised<Static<typeof FaissIndexSchema>>;

export function normaliseFaiss(raw: Static<typeof FaissIndexSchema>[], postgres: readonly NamedTarget[], ctx: Ctx): FaissIndexConfig[] {
  const out = raw.map((f, i) => {
    if (f.source) mustExist(ctx, postgres, f.source.target, 'postgres', ['faiss', i, 'source', 'target']);
    return { ...normaliseFields(FaissIndexSchema, f, ['faiss', i], ctx), path: resolvePath(ctx, f.path) };
  });
  uniqueNames(ctx, out, 'faiss');
  return out;
}
