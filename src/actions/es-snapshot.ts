import { Type, type Static } from '@sinclair/typebox';
import type { ElasticsearchTarget } from '../targets/elasticsearch.ts';
import { defineAction } from './action.ts';
import { esTarget, esTargetKey, step } from './es-support.ts';
import { errorType } from '../targets/elasticsearch-errors.ts';
import { checkSignal, sleep, TargetName } from './support.ts';

// The runbook's "Elasticsearch: snapshot": a snapshot of the target's configured index
// patterns (all indices when none are configured) into its configured snapshot_repository,
// under a name fixed per UTC day — <prefix>-<target>-YYYY.MM.DD — so a second run the same day
// finds it instead of taking another. When that day's snapshot ended FAILED, PARTIAL or
// INCOMPATIBLE the next try is named <name>.2, then .3, up to .5.
//
// Requests:
// - GET /_snapshot/{repository}/{snapshot}?ignore_unavailable=true&index_names=false
//   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-snapshot-get
//   { snapshots: [{ snapshot, state: IN_PROGRESS|SUCCESS|PARTIAL|FAILED|INCOMPATIBLE, shards, ... }] }
// - PUT /_snapshot/{repository}/{snapshot}?wait_for_completion=false
//   { indices, ignore_unavailable: true, include_global_state, metadata }
//   https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-snapshot-create
//   { accepted: true }. The action then polls the snapshot until it leaves IN_PROGRESS, within
//   the run's signal and timeout_seconds; a snapshot outlives an abort (it continues in
//   Elasticsearch) and the next run waits for it rather than starting another.

const Params = Type.Object(
  {
    target: TargetName('elasticsearch target (config elasticsearch[].name); its snapshot_repository and index_patterns decide'),
    prefix: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,39}$', default: 'housekeeper', description: 'first part of the snapshot name' }),
    include_global_state: Type.Boolean({ default: false, description: 'also snapshot templates, persistent settings, pipelines' }),
    timeout_seconds: Type.Integer({ minimum: 1, maximum: 86_400, default: 840, description: 'how long the run waits for the snapshot' }),
    poll_interval_seconds: Type.Number({ minimum: 0.05, maximum: 60, default: 5, description: 'how often the snapshot is polled' }),
  },
  { additionalProperties: false },
);
type P = Static<typeof Params>;

const TRIES_PER_DAY = 5;

type State = 'IN_PROGRESS' | 'SUCCESS' | 'PARTIAL' | 'FAILED' | 'INCOMPATIBLE';

/** Today's names (UTC), first try first. Snapshot names must be lowercase. */
function snapshotNames(p: P, target: string, now = new Date()): string[] {
  const day = `${now.getUTCFullYear()}.${String(now.getUTCMonth() + 1).padStart(2, '0')}.${String(now.getUTCDate()).padStart(2, '0')}`;
  const base = `${p.prefix}-${target.toLowerCase()}-${day}`;
  return Array.from({ length: TRIES_PER_DAY }, (_, i) => (i === 0 ? base : `${base}.${i + 1}`));
}

function repository(t: ElasticsearchTarget): string {
  if (t.snapshotRepository === undefined) throw new Error(`elasticsearch target "${t.name}" has no snapshot_repository in config`);
  return t.snapshotRepository;
}

async function stateOf(t: ElasticsearchTarget, repo: string, name: string, signal: AbortSignal): Promise<{ state: State; shards: string } | undefined> {
  try {
    const res = await step(`GET /_snapshot/${repo}/${name}`, () =>
      t.client.snapshot.get({ repository: repo, snapshot: name, ignore_unavailable: true, index_names: false }, { signal }),
    );
    const s = res.snapshots?.find((x) => x.snapshot === name);
    if (!s) return undefined;
    const shards = s.shards ? `${s.shards.successful}/${s.shards.total} shards` : 'shards unknown';
    return { state: (s.state ?? 'IN_PROGRESS') as State, shards };
  } catch (err) {
    const e = errorType(err);
    if (e.status === 404 && e.type === 'snapshot_missing_exception') return undefined;
    throw err;
  }
}

/** Today's situation: a snapshot that succeeded or runs, else the name the next one takes. */
async function today(t: ElasticsearchTarget, p: P, signal: AbortSignal): Promise<{ name: string; state: State | undefined; shards?: string; failed: string[] }> {
  const repo = repository(t);
  const failed: string[] = [];
  for (const name of snapshotNames(p, t.name)) {
    const s = await stateOf(t, repo, name, signal);
    if (s === undefined) return { name, state: undefined, failed };
    if (s.state === 'SUCCESS' || s.state === 'IN_PROGRESS') return { name, state: s.state, shards: s.shards, failed };
    failed.push(`${name} ${s.state}`);
  }
  throw new Error(`${TRIES_PER_DAY} snapshots of "${t.name}" failed today (${failed.join(', ')}); a human must look`);
}

/** The snapshot each target's last run made or waited for, for verify (across midnight too). */
const lastSnapshot = new Map<string, string>();

export default defineAction({
  name: 'es-snapshot',
  description:
    'Snapshots the target\'s configured index_patterns (all indices when none) into its configured snapshot_repository, ' +
    'named <prefix>-<target>-YYYY.MM.DD (UTC day; .2 … .5 after a failed try), and waits for it within the run\'s signal ' +
    'and timeout_seconds (default 840). Idempotent: a run finds the day\'s snapshot that succeeded (nothing to do) or is ' +
    'still running (it waits for it) instead of taking another. An abort stops the wait; the snapshot continues in ' +
    'Elasticsearch. Verify: the snapshot exists with state SUCCESS.',
  params: Params,
  idempotent: true,
  disruptive: false,
  targetKey: esTargetKey,

  async plan(ctx, p) {
    const t = esTarget(ctx, p.target);
    const repo = repository(t);
    const d = await today(t, p, checkSignal());
    const what = t.indexPatterns.length ? `indices ${t.indexPatterns.join(',')}` : 'all indices';
    const retry = d.failed.length ? ` (after ${d.failed.join(', ')})` : '';
    return {
      summary:
        d.state === 'SUCCESS'
          ? `snapshot ${repo}/${d.name} of "${t.name}" already taken today (SUCCESS, ${d.shards})`
          : d.state === 'IN_PROGRESS'
            ? `wait for snapshot ${repo}/${d.name} of "${t.name}", in progress`
            : `snapshot ${what} of "${t.name}" to ${repo}/${d.name}${retry}`,
      details: { repository: repo, snapshot: d.name, state: d.state ?? null, indices: t.indexPatterns, failed_today: d.failed },
      nothingToDo: d.state === 'SUCCESS',
    };
  },

  async run(ctx, p, signal) {
    const t = esTarget(ctx, p.target);
    const repo = repository(t);
    const d = await today(t, p, signal);
    lastSnapshot.set(t.name, d.name);
    if (d.state === 'SUCCESS') return { summary: `snapshot ${repo}/${d.name} already taken today (${d.shards})`, details: { snapshot: d.name, state: d.state } };
    let started = false;
    if (d.state === undefined) {
      await step(`PUT /_snapshot/${repo}/${d.name}`, () =>
        t.client.snapshot.create(
          {
            repository: repo,
            snapshot: d.name,
            wait_for_completion: false,
            ...(t.indexPatterns.length ? { indices: t.indexPatterns.join(',') } : {}),
            ignore_unavailable: true,
            include_global_state: p.include_global_state,
            metadata: { taken_by: 'housekeeper', target: t.name },
          },
          { signal },
        ),
      );
      started = true;
    }
    const deadline = Date.now() + p.timeout_seconds * 1000;
    const pollMs = p.poll_interval_seconds * 1000;
    // An abort (the alert resolved, shutdown) can land during a status request or between
    // two: either way the snapshot goes on in Elasticsearch, and the error says so.
    const stoppedWaiting = (): Error =>
      new Error(`${signal.reason instanceof Error ? signal.reason.message : 'aborted'}: stopped waiting for snapshot ${repo}/${d.name}, which continues in Elasticsearch`);
    for (;;) {
      const s = await stateOf(t, repo, d.name, signal).catch((err: unknown) => {
        throw signal.aborted ? stoppedWaiting() : err;
      });
      if (s === undefined) throw new Error(`snapshot ${repo}/${d.name} ${started ? 'was accepted but' : ''} cannot be found`);
      if (s.state !== 'IN_PROGRESS') {
        return {
          summary: `snapshot ${repo}/${d.name} of "${t.name}" ${started ? 'taken' : 'finished'}: ${s.state} (${s.shards})`,
          details: { snapshot: d.name, repository: repo, state: s.state, started },
        };
      }
      if (Date.now() + pollMs > deadline) {
        throw new Error(`snapshot ${repo}/${d.name} still IN_PROGRESS after ${p.timeout_seconds}s; it continues in Elasticsearch and the next run waits for it`);
      }
      await sleep(pollMs, signal).catch(() => {
        throw stoppedWaiting();
      });
    }
  },

  async verify(ctx, p) {
    const t = esTarget(ctx, p.target);
    const repo = repository(t);
    const name = lastSnapshot.get(t.name) ?? (await today(t, p, checkSignal())).name;
    const s = await stateOf(t, repo, name, checkSignal());
    return {
      fixed: s?.state === 'SUCCESS',
      detail: s === undefined ? `snapshot ${repo}/${name} does not exist` : `snapshot ${repo}/${name}: ${s.state} (${s.shards})`,
    };
  },
});
