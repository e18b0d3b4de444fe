import { Type, type Static } from '@sinclair/typebox';
import type { ElasticsearchTarget } from '../targets/elasticsearch.ts';
import { parseDuration } from '../util/duration.ts';
import { defineAction } from './action.ts';
import { chunks, esTarget, esTargetKey, type IndexRow, isLiteralIndexName, matchingIndices, step, writers, writtenBy } from './es-support.ts';
import { errorType } from '../targets/elasticsearch-errors.ts';
import { checkSignal, plural, sleep, TargetName } from './support.ts';

// The runbook's "Elasticsearch: force-merge to 1 segment", only on indices no longer written
// (Elastic: "We recommend only force merging a read-only index"): among the indices the
// target's configured patterns match by name, the open ones that are older than `older_than`
// or carry a write block, that are not the write index of an alias or data stream, that are
// not past the retention (es-delete-old-indices removes those), and whose primaries still have
// more than one segment per shard. One index at a time, oldest first.
//
// Requests:
// - GET /{names}/_settings/index.blocks.*?flat_settings=true
//   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-get-settings
//   { "<index>": { "settings": { "index.blocks.write": "true" } } }
// - GET /{names}/_stats/segments?level=indices
//   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-stats
//   { indices: { "<index>": { primaries: { segments: { count } } } } }
// - POST /{index}/_forcemerge?max_num_segments=1&wait_for_completion=false
//   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-forcemerge
//   { task: "<node>:<id>" }. The merge runs as a task; "if the client connection is lost before
//   completion then the force merge process will continue in the background", and it cannot be
//   cancelled, so the action polls the task instead of holding a socket of the target's small
//   pool (shared with the collector) for the whole merge.
// - GET /_tasks/{task}
//   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-tasks-get
//   { completed, task: {...}, response?: { _shards: { total, successful, failed } }, error? }

const Params = Type.Object(
  {
    target: TargetName('elasticsearch target (config elasticsearch[].name); its index_patterns decide'),
    older_than: Type.String({ pattern: '^[0-9]+(h|d|w)$', default: '2d', description: 'an index older than this is no longer written (at least 1h)' }),
    max_indices: Type.Integer({ minimum: 1, maximum: 100, default: 5, description: 'most indices merged per run, oldest first' }),
    poll_interval_seconds: Type.Number({ minimum: 0.05, maximum: 60, default: 5, description: 'how often the merge task is polled' }),
  },
  { additionalProperties: false },
);
type P = Static<typeof Params>;

/** Names per settings/stats request: keeps the request line short. */
const NAMES_PER_REQUEST = 20;

interface Candidate extends IndexRow {
  segments: number;
  readOnly: boolean;
}

interface Selection {
  eligible: Candidate[];
  more: number;
  /** Old or read-only indices left alone, with the reason. */
  skipped: { index: string; reason: string }[];
}

const blocked = (s: Record<string, unknown>): boolean =>
  ['index.blocks.write', 'index.blocks.read_only', 'index.blocks.read_only_allow_delete'].some((k) => String(s[k]) === 'true');

async function select(t: ElasticsearchTarget, p: P, signal: AbortSignal): Promise<Selection> {
  const minAgeMs = parseDuration(p.older_than);
  const now = Date.now();
  const open = (await matchingIndices(t, signal)).filter(
    (r) => r.status === 'open' && r.createdMs > 0 && now - r.createdMs <= t.retentionMs && isLiteralIndexName(r.name),
  );
  if (open.length === 0) return { eligible: [], more: 0, skipped: [] };
  const settings = new Map<string, Record<string, unknown>>();
  const segments = new Map<string, number>();
  for (const names of chunks(open.map((r) => r.name), NAMES_PER_REQUEST)) {
    const s = await step(`GET /${names.join(',')}/_settings`, () =>
      t.client.indices.getSettings({ index: names, name: 'index.blocks.*', flat_settings: true, expand_wildcards: 'none' }, { signal }),
    );
    for (const [name, v] of Object.entries(s)) settings.set(name, (v.settings ?? {}) as Record<string, unknown>);
  }
  const candidates = open.filter((r) => now - r.createdMs > minAgeMs || blocked(settings.get(r.name) ?? {}));
  const w = candidates.length > 0 ? await writers(t, signal) : undefined;
  const skipped: Selection['skipped'] = [];
  const unwritten: IndexRow[] = [];
  for (const r of candidates) {
    const why = w && writtenBy(w, r.name);
    if (why) skipped.push({ index: r.name, reason: `${why}, still written` });
    else unwritten.push(r);
  }
  for (const names of chunks(unwritten.map((r) => r.name), NAMES_PER_REQUEST)) {
    const s = await step(`GET /${names.join(',')}/_stats/segments`, () =>
      t.client.indices.stats({ index: names, metric: 'segments', level: 'indices', expand_wildcards: 'none' }, { signal }),
    );
    for (const [name, v] of Object.entries(s.indices ?? {})) segments.set(name, Number(v.primaries?.segments?.count ?? 0));
  }
  const eligible: Candidate[] = [];
  for (const r of unwritten) {
    const n = segments.get(r.name);
    if (n === undefined) skipped.push({ index: r.name, reason: 'no segment statistics' });
    else if (n > r.primaries) eligible.push({ ...r, segments: n, readOnly: blocked(settings.get(r.name) ?? {}) });
  }
  const max = p.max_indices;
  return { eligible: eligible.slice(0, max), more: Math.max(0, eligible.length - max), skipped };
}

/** Starts the merge of one index and waits for its task, polling; the signal ends the wait. */
async function merge(t: ElasticsearchTarget, index: string, pollMs: number, signal: AbortSignal): Promise<{ shards: string }> {
  const started = await step(`POST /${index}/_forcemerge`, () =>
    t.client.indices.forcemerge({ index, max_num_segments: 1, wait_for_completion: false, expand_wildcards: 'none' }, { signal }),
  );
  const shardText = (s: { total?: number; successful?: number; failed?: number } | undefined): string =>
    s ? `${s.successful ?? 0}/${s.total ?? 0} shards` : 'shards unknown';
  if (started.task === undefined) {
    // A server that merged before answering (no task): its answer is the result.
    if ((started._shards?.failed ?? 0) > 0) throw new Error(`force merge of ${index} failed on ${started._shards?.failed} shards`);
    return { shards: shardText(started._shards) };
  }
  const task = started.task;
  // Once started, the merge runs on whatever happens to this wait: say so when the wait ends early.
  const stillRunning = (err: unknown): Error => {
    const why = signal.aborted && signal.reason instanceof Error ? signal.reason.message : (err as Error).message;
    return new Error(`${why}; the merge of ${index} (task ${task}) continues in Elasticsearch`);
  };
  for (;;) {
    if (signal.aborted) throw stillRunning(signal.reason);
    let res;
    try {
      res = await step(`GET /_tasks/${task}`, () => t.client.tasks.get({ task_id: task }, { signal }));
    } catch (err) {
      const e = errorType(err);
      // The task record is gone (e.g. its node restarted): verify reads the segments instead.
      if (e.status === 404 && !signal.aborted) return { shards: 'task record gone' };
      throw stillRunning(err);
    }
    if (res.completed) {
      if (res.error) throw new Error(`force merge of ${index} failed: ${res.error.type ?? ''}: ${res.error.reason ?? ''}`);
      const shards = (res.response as { _shards?: { total?: number; successful?: number; failed?: number } } | undefined)?._shards;
      if ((shards?.failed ?? 0) > 0) throw new Error(`force merge of ${index} failed on ${shards?.failed} of ${shards?.total} shards`);
      return { shards: shardText(shards) };
    }
    try {
      await sleep(pollMs, signal);
    } catch (err) {
      throw stillRunning(err);
    }
  }
}

export default defineAction({
  name: 'es-forcemerge',
  description:
    'Force-merges to 1 segment the indices no longer written among those the target\'s configured index_patterns match by ' +
    'name: open, older than older_than (default 2d) or write-blocked, not the write index of an alias or data stream, not ' +
    'past the retention, and with more than one segment per primary shard; oldest first, one at a time, at most ' +
    'max_indices per run. The merge runs as an Elasticsearch task that the action polls; an abort stops the wait, not the ' +
    'merge (Elasticsearch cannot cancel one). Idempotent (a merged index is not selected again). Heavy on I/O: schedule it ' +
    'in a quiet window. Verify: no eligible index has more than one segment per primary shard.',
  params: Params,
  idempotent: true,
  disruptive: false,
  targetKey: esTargetKey,

  async plan(ctx, p) {
    checkAge(p);
    const t = esTarget(ctx, p.target);
    const s = await select(t, p, checkSignal());
    const more = s.more ? ` (${s.more} more, next run)` : '';
    const skipped = s.skipped.length ? `; left alone: ${s.skipped.map((x) => `${x.index} (${x.reason})`).join(', ')}` : '';
    return {
      summary:
        s.eligible.length === 0
          ? `no index of "${t.name}" to force-merge${skipped}`
          : `force-merge to 1 segment ${plural(s.eligible.length, 'index', 'indices')} of "${t.name}": ` +
            `${s.eligible.map((r) => `${r.name} (${r.segments} segments on ${r.primaries} primaries${r.readOnly ? ', read-only' : ''})`).join(', ')}${more}${skipped}`,
      details: { older_than: p.older_than, indices: s.eligible, more: s.more, skipped: s.skipped },
      nothingToDo: s.eligible.length === 0,
    };
  },

  async run(ctx, p, signal) {
    checkAge(p);
    const t = esTarget(ctx, p.target);
    const s = await select(t, p, signal);
    const pollMs = p.poll_interval_seconds * 1000;
    const merged: { index: string; shards: string }[] = [];
    for (const r of s.eligible) {
      signal.throwIfAborted();
      try {
        merged.push({ index: r.name, ...(await merge(t, r.name, pollMs, signal)) });
      } catch (err) {
        const done = merged.length ? ` (merged before it: ${merged.map((m) => m.index).join(', ')})` : '';
        throw new Error(`${(err as Error).message}${done}`);
      }
    }
    return {
      summary:
        `force-merged ${plural(merged.length, 'index', 'indices')} of "${t.name}" to 1 segment` +
        (merged.length ? `: ${merged.map((m) => `${m.index} (${m.shards})`).join(', ')}` : '') +
        (s.more ? `; ${s.more} more, next run` : ''),
      details: { merged, more: s.more, skipped: s.skipped },
    };
  },

  async verify(ctx, p) {
    const t = esTarget(ctx, p.target);
    const s = await select(t, { ...p, max_indices: 100 }, checkSignal());
    return {
      fixed: s.eligible.length === 0,
      detail:
        s.eligible.length === 0
          ? `every index of "${t.name}" no longer written has 1 segment per primary shard`
          : `still more than 1 segment per primary shard: ${s.eligible.map((r) => `${r.name} (${r.segments})`).join(', ')}`,
    };
  },
});

function checkAge(p: P): void {
  if (parseDuration(p.older_than) < 3_600_000) throw new Error('older_than must be at least 1h');
}

