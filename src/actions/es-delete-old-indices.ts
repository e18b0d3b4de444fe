import { Type, type Static } from '@sinclair/typebox';
import type { ElasticsearchTarget } from '../targets/elasticsearch.ts';
import { defineAction } from './action.ts';
import { days, esTarget, esTargetKey, type IndexRow, isLiteralIndexName, matchingIndices, step, writers, writtenBy } from './es-support.ts';
import { isIndexNotFound } from '../targets/elasticsearch-errors.ts';
import { checkSignal, plural, TargetName } from './support.ts';

// The runbook's "Elasticsearch: delete indices older than 30 days". Which indices: those the
// target's configured index_patterns match by their own name, created longer ago than its
// configured retention (elasticsearch[].index_patterns, retention); nothing in the params
// widens that. Each index is deleted by its exact name, one request each
// (DELETE /{index}?expand_wildcards=none,
// https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-delete), never
// by a wildcard. Refused: any data-stream backing index (a data stream's retention belongs to
// its lifecycle or ILM policy, and its write index cannot be deleted), the write index of an
// alias, and a name that is not one literal index name.

const Params = Type.Object(
  {
    target: TargetName('elasticsearch target (config elasticsearch[].name); its index_patterns and retention decide'),
    max_indices: Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: 'most indices deleted per run, oldest first' }),
  },
  { additionalProperties: false },
);
type P = Static<typeof Params>;


interface Refused {
  index: string;
  reason: string;
}

interface Selection {
  deletable: IndexRow[];
  /** Past retention beyond max_indices: the next run's. */
  more: number;
  refused: Refused[];
}

async function select(t: ElasticsearchTarget, p: P, signal: AbortSignal): Promise<Selection> {
  const now = Date.now();
  const old = (await matchingIndices(t, signal)).filter((r) => r.createdMs > 0 && now - r.createdMs > t.retentionMs);
  const w = old.length > 0 ? await writers(t, signal) : undefined;
  const ok: IndexRow[] = [];
  const refused: Refused[] = [];
  for (const r of old) {
    const ds = w?.dataStream.get(r.name);
    const why = !isLiteralIndexName(r.name)
      ? 'not a literal index name'
      : ds
        ? `backing index of data stream ${ds.stream} (its lifecycle deletes it)`
        : w && writtenBy(w, r.name);
    if (why) refused.push({ index: r.name, reason: why });
    else ok.push(r);
  }
  const max = p.max_indices;
  return { deletable: ok.slice(0, max), more: Math.max(0, ok.length - max), refused };
}

const refusedText = (r: Refused[]): string => (r.length ? `; refused: ${r.map((x) => `${x.index} (${x.reason})`).join(', ')}` : '');
const ageOf = (r: IndexRow, now: number): string => `${Math.floor((now - r.createdMs) / 86_400_000)}d`;

export default defineAction({
  name: 'es-delete-old-indices',
  description:
    'Deletes the indices that the target\'s configured index_patterns match by their own name and that were created longer ' +
    'ago than its configured retention (runbook: 30 days), oldest first, at most max_indices per run. One DELETE per index, ' +
    'by exact name with expand_wildcards=none, never a wildcard. Refuses data-stream backing indices, the write index of an ' +
    'alias, and names that are not literal index names (listed in the plan). Fails, deleting nothing, when it cannot tell ' +
    'which indices are written to. An index already gone counts as deleted. Idempotent; not reversible (snapshot first). ' +
    'Verify: no deletable index past the retention remains.',
  params: Params,
  idempotent: true,
  disruptive: false,
  targetKey: esTargetKey,

  async plan(ctx, p) {
    const t = esTarget(ctx, p.target);
    const s = await select(t, p, checkSignal());
    const now = Date.now();
    const more = s.more ? ` (${s.more} more, next run)` : '';
    return {
      summary:
        s.deletable.length === 0
          ? `no index of "${t.name}" (${t.indexPatterns.join(', ')}) to delete past the ${days(t.retentionMs)} retention${refusedText(s.refused)}`
          : `delete ${plural(s.deletable.length, 'index', 'indices')} of "${t.name}" past the ${days(t.retentionMs)} retention: ` +
            `${s.deletable.map((r) => `${r.name} (${ageOf(r, now)})`).join(', ')}${more}${refusedText(s.refused)}`,
      details: {
        patterns: t.indexPatterns,
        retention_ms: t.retentionMs,
        indices: s.deletable.map((r) => ({ index: r.name, created: new Date(r.createdMs).toISOString(), status: r.status, pattern: r.pattern })),
        more: s.more,
        refused: s.refused,
      },
      nothingToDo: s.deletable.length === 0,
    };
  },

  async run(ctx, p, signal) {
    const t = esTarget(ctx, p.target);
    const s = await select(t, p, signal);
    const deleted: string[] = [];
    const gone: string[] = [];
    for (const r of s.deletable) {
      signal.throwIfAborted();
      try {
        await step(`DELETE /${r.name}`, () => t.client.indices.delete({ index: r.name, expand_wildcards: 'none' }, { signal }));
        deleted.push(r.name);
      } catch (err) {
        if (isIndexNotFound(err)) {
          gone.push(r.name);
          continue;
        }
        const done = deleted.length ? ` (deleted before it: ${deleted.join(', ')})` : ' (nothing deleted)';
        throw new Error(`${(err as Error).message}${done}`);
      }
    }
    return {
      summary:
        `deleted ${plural(deleted.length, 'index', 'indices')} of "${t.name}"${deleted.length ? `: ${deleted.join(', ')}` : ''}` +
        (gone.length ? `; already gone: ${gone.join(', ')}` : '') +
        (s.more ? `; ${s.more} more past retention, next run` : '') +
        refusedText(s.refused),
      details: { deleted, already_gone: gone, more: s.more, refused: s.refused },
    };
  },

  async verify(ctx, p) {
    const t = esTarget(ctx, p.target);
    const s = await select(t, { ...p, max_indices: 1000 }, checkSignal());
    const left = [...s.deletable.map((r) => r.name)];
    return {
      fixed: left.length === 0,
      detail:
        (left.length === 0
          ? `no deletable index of "${t.name}" past the ${days(t.retentionMs)} retention remains`
          : `still past the ${days(t.retentionMs)} retention: ${left.join(', ')}`) + refusedText(s.refused),
    };
  },
});
