import type { ElasticsearchTarget } from '../targets/elasticsearch.ts';
import { isIndexNotFound, step as esStep } from '../targets/elasticsearch-errors.ts';
import type { ActionContext } from './action.ts';

// What the Elasticsearch actions share: the target, the indices its configured patterns match
// (by their own names), and which indices are written to (write indices of aliases and data
// streams), all through the official client with the run's signal. Index patterns, retention
// and the snapshot repository come from the target's config, never from params or labels.
//
// Requests (Elasticsearch's REST API; shapes as documented there):
// - GET /_cat/indices/{pattern}?format=json&h=index,status,creation.date,pri&expand_wildcards=all
//   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-cat-indices
//   [{ index, status: open|close, "creation.date": "<ms>", pri: "<n>" }], values as strings.
//   A wildcard also matches aliases and data streams, which expand to their indices (whose
//   names may not match); those are dropped here: an index is taken only by its own name.
// - GET /_data_stream?expand_wildcards=all
//   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-get-data-stream
//   { data_streams: [{ name, indices: [{ index_name, index_uuid }], ... }] }; "the last item
//   in this array contains information about the stream's current write index".
// - GET /_cat/aliases?format=json&h=alias,index,is_write_index&expand_wildcards=all
//   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-cat-aliases
//   [{ alias, index, is_write_index: "true" | "false" | "-" }]. An alias with one index and no
//   is_write_index set writes to that index (https://www.elastic.co/docs/manage-data/data-store/aliases).

/** The Elasticsearch actions act on the same cluster: the engine runs one at a time per target. */
export const esTargetKey = (p: { target: string }): string => `elasticsearch:${p.target}`;

export function esTarget(ctx: ActionContext, name: string): ElasticsearchTarget {
  const t = ctx.targets.elasticsearch.find((x) => x.name === name);
  if (!t) throw new Error(`no elasticsearch target named "${name}" in config`);
  return t;
}

/** One request, its failure named (elasticsearch-errors.ts); the client's error stays as `cause` for errorType. */
export function step<T>(what: string, run: () => Promise<T>): Promise<T> {
  return esStep(what, run, { keepCause: true });
}

/**
 * One literal index name as Elasticsearch reports it. Index names cannot hold these
 * characters (https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-create),
 * so a name that does is not used in a request path: a wildcard or comma there would widen it.
 */
export function isLiteralIndexName(name: string): boolean {
  return /^[^\\/*?"<>| ,#:]+$/.test(name) && !/^[-_+]/.test(name) && name !== '.' && name !== '..' && Buffer.byteLength(name) <= 255;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/**
 * Whether the index name itself matches the configured pattern (a comma list of globs, with
 * `-glob` excluding what the expressions before it matched, as Elasticsearch reads it). Names
 * starting with a dot (system and hidden indices, data-stream backing indices) match only an
 * expression that starts with a dot too.
 */
function nameMatches(name: string, pattern: string): boolean {
  let included = false;
  for (const raw of pattern.split(',')) {
    const expr = raw.trim();
    if (expr === '') continue;
    if (expr.startsWith('-') && included) {
      if (globToRegExp(expr.slice(1)).test(name)) included = false;
      continue;
    }
    if (name.startsWith('.') && !expr.startsWith('.')) continue;
    if (globToRegExp(expr).test(name)) included = true;
  }
  return included;
}

export interface IndexRow {
  name: string;
  status: 'open' | 'close';
  createdMs: number;
  primaries: number;
  /** The configured pattern it matched first. */
  pattern: string;
}

/** The indices the target's patterns match by name, oldest first, each once. */
export async function matchingIndices(t: ElasticsearchTarget, signal: AbortSignal): Promise<IndexRow[]> {
  if (t.indexPatterns.length === 0) throw new Error(`elasticsearch target "${t.name}" has no index_patterns in config`);
  const seen = new Map<string, IndexRow>();
  for (const pattern of t.indexPatterns) {
    signal.throwIfAborted();
    const rows = await step(`GET /_cat/indices/${pattern}`, async () => {
      try {
        return await t.client.cat.indices(
          { index: pattern, format: 'json', h: ['index', 'status', 'creation.date', 'pri'], expand_wildcards: 'all' },
          { signal },
        );
      } catch (err) {
        // A pattern without wildcards that names no index: no indices, not a failure.
        if (isIndexNotFound(err)) return [];
        throw err;
      }
    });
    for (const r of rows) {
      const name = r.index ?? '';
      if (name === '' || seen.has(name) || !nameMatches(name, pattern)) continue;
      seen.set(name, {
        name,
        status: r.status === 'close' ? 'close' : 'open',
        createdMs: Number(r['creation.date'] ?? 0),
        primaries: Math.max(1, Number(r.pri ?? 1) || 1),
        pattern,
      });
    }
  }
  return [...seen.values()].sort((a, b) => a.createdMs - b.createdMs || a.name.localeCompare(b.name));
}

export interface Writers {
  /** Backing index → its data stream and whether it is the stream's write index. */
  dataStream: Map<string, { stream: string; write: boolean }>;
  /** Index → the aliases it is the write index of. */
  aliasWrite: Map<string, string[]>;
}

/**
 * Which indices are written to. When the cluster cannot say (an error, or no privilege), the
 * action fails rather than guess: deleting or merging an index still written to is the harm
 * these checks exist to prevent.
 */
export async function writers(t: ElasticsearchTarget, signal: AbortSignal): Promise<Writers> {
  const ds = await step('GET /_data_stream', () => t.client.indices.getDataStream({ expand_wildcards: 'all' }, { signal }));
  const dataStream = new Map<string, { stream: string; write: boolean }>();
  for (const s of ds.data_streams ?? []) {
    s.indices.forEach((ix, i) => dataStream.set(ix.index_name, { stream: s.name, write: i === s.indices.length - 1 }));
  }
  const rows = await step('GET /_cat/aliases', () =>
    t.client.cat.aliases({ format: 'json', h: ['alias', 'index', 'is_write_index'], expand_wildcards: 'all' }, { signal }),
  );
  const byAlias = new Map<string, { index: string; write: string }[]>();
  for (const r of rows) {
    if (!r.alias || !r.index) continue;
    const list = byAlias.get(r.alias) ?? [];
    list.push({ index: r.index, write: String(r.is_write_index ?? '-') });
    byAlias.set(r.alias, list);
  }
  const aliasWrite = new Map<string, string[]>();
  for (const [alias, list] of byAlias) {
    for (const x of list) {
      if (x.write === 'true' || (list.length === 1 && x.write !== 'false')) aliasWrite.set(x.index, [...(aliasWrite.get(x.index) ?? []), alias]);
    }
  }
  return { dataStream, aliasWrite };
}

/** Why an index is written to, or undefined. */
export function writtenBy(w: Writers, index: string): string | undefined {
  const ds = w.dataStream.get(index);
  if (ds?.write) return `write index of data stream ${ds.stream}`;
  const aliases = w.aliasWrite.get(index);
  if (aliases) return `write index of alias ${aliases.join(', ')}`;
  return undefined;
}

export function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

export const days = (ms: number): string => (ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${Math.round(ms / 1000)}s`);
