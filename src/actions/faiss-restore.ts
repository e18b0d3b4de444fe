import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { FaissIndexConfig } from '../config.ts';
import { listBackups, type StoredBackup } from '../backups/store.ts';
import { verifyBackup } from '../backups/verify.ts';
import { extractVectorIndexBackup } from '../backups/vector-index.ts';
import { runCheck, type CheckOutcome } from '../faiss/checker.ts';
import { fileSha256, idsMatch, IDS_SUFFIX, idsPath } from '../faiss/ids.ts';
import { publishGeneration, reconcileIds, removeLeftovers } from '../faiss/rebuild.ts';
import { SIDECAR_SUFFIX, sidecarPath } from '../faiss/sidecar.ts';
import { defineAction, type ActionContext, type RunResult } from './action.ts';
import { bytes, errorText } from './backup-support.ts';
import {
  buildAndPublish,
  buildSettings,
  checkDirectory,
  faissConfig,
  faissTargetKey,
  IndexName,
  lastPublished,
  liveHead,
  outcomeDetails,
  outcomeLine,
  verifyPublished,
} from './faiss-support.ts';

// The runbook's "index corruption" fix: put back the newest vector_index backup (backup-run's
// tar of the index and its sidecars) that passes its checksum and whose index loads, holds as
// many vectors as its id map and meets the recall floor; published like a rebuild (id map,
// then index, by rename; the broken generation kept as <index>.prev). When no backup passes,
// rebuild from the source table instead. By default it acts only when the live index is
// actually broken, so a late or repeated alert does not roll a healthy index back.

const Params = Type.Object(
  {
    index: IndexName,
    backup: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[^/\\\\]+$', description: 'restore this backup file (a base name in backups.directory) instead of the newest good one' })),
    force: Type.Boolean({ default: false, description: 'restore even when the live index loads and passes' }),
    fallback: Type.Union([Type.Literal('rebuild'), Type.Literal('none')], { default: 'rebuild', description: 'when no backup passes: rebuild from the source table, or fail' }),
  },
  { additionalProperties: false },
);

/** Backups examined at most, newest first: a run does not hash a whole retention's worth. */
const MAX_CANDIDATES = 5;
const CHECK_TIMEOUT_MS = 10 * 60_000;

/** Whether the live index is healthy: loads, id map consistent when present, recall meets the floor. */
async function liveHealth(cfg: FaissIndexConfig): Promise<{ healthy: boolean; detail: string }> {
  const { head, problem } = await liveHead(cfg.path);
  if (!head) return { healthy: false, detail: `live index ${problem}` };
  const check = await runCheck({ path: cfg.path, recallSample: cfg.recallSample, timeoutMs: CHECK_TIMEOUT_MS });
  return judge(cfg, cfg.path, check, 'live index');
}

async function judge(cfg: FaissIndexConfig, path: string, check: CheckOutcome, what: string): Promise<{ healthy: boolean; detail: string; vectors?: number }> {
  if (check.loadable !== true || !check.facts) return { healthy: false, detail: `${what} does not load: ${check.problem ?? 'check failed'}` };
  const vectors = check.facts.vectors ?? 0;
  const ids = idsPath(path);
  const live = await fileSha256(path);
  const map = await idsMatch(ids, live, vectors);
  if (!map.ok && map.detail !== 'no id map') return { healthy: false, detail: `${what}: ${map.detail}`, vectors };
  const recall = check.facts.recall;
  if (recall && recall.value < cfg.recallFloor) return { healthy: false, detail: `${what}: recall@${recall.k} ${recall.value.toFixed(3)} below the floor ${cfg.recallFloor}`, vectors };
  if (vectors === 0) return { healthy: false, detail: `${what} is empty`, vectors };
  return { healthy: true, detail: `${what} loads (${vectors} vectors${recall ? `, recall@${recall.k} ${recall.value.toFixed(3)}` : ''}; ${map.detail})`, vectors };
}

/** This index's vector_index backups, newest first (or the one named). */
async function candidates(ctx: ActionContext, cfg: FaissIndexConfig, named: string | undefined): Promise<{ list: StoredBackup[]; why: string | undefined }> {
  const b = ctx.config.backups;
  if (!b) return { list: [], why: 'no backups section in config' };
  if (!b.kinds.vector_index) return { list: [], why: 'backups.kinds has no vector_index' };
  const listing = await listBackups(b, ['vector_index']);
  let list = listing.backups.filter((x) => x.manifest.source.type === 'faiss' && x.manifest.source.target === cfg.name);
  if (named !== undefined) {
    list = list.filter((x) => x.name === named);
    if (list.length === 0) return { list, why: `no vector_index backup of "${cfg.name}" named ${named}` };
  }
  return { list: list.slice(0, MAX_CANDIDATES), why: list.length === 0 ? `no vector_index backup of "${cfg.name}" in ${b.directory}` : undefined };
}

interface Restored {
  backup: StoredBackup;
  vectors: number;
  ids: boolean;
  sidecar: boolean;
  detail: string;
}

/**
 * Tries one backup: checksum, extract into a hidden directory beside the index, check the
 * extracted index in the check process, then publish. Throws with the reason it was not used.
 */
async function tryBackup(cfg: FaissIndexConfig, b: StoredBackup, signal: AbortSignal): Promise<Restored> {
  const verdict = await verifyBackup(b.path, b.identity, b.manifest, { signal });
  if (verdict.status !== 'ok') throw new Error(`${verdict.reason ?? verdict.status}: ${verdict.detail}`);
  const dir = join(dirname(cfg.path), `.${basename(cfg.path)}.hk-${process.pid}-${randomBytes(4).toString('hex')}.restore.tmp`);
  await mkdir(dir, { mode: 0o700 });
  try {
    await extractVectorIndexBackup(b.path, dir, { signal });
    // Members are base names of the files as they were backed up.
    const member = basename(b.manifest.source.path ?? cfg.path);
    const names = new Set(await readdir(dir));
    if (!names.has(member)) throw new Error(`the archive has no ${member}`);
    const index = join(dir, member);
    if (!(await stat(index)).isFile()) throw new Error(`${member} in the archive is not a regular file`);
    signal.throwIfAborted();
    const check = await runCheck({ path: index, recallSample: cfg.recallSample, timeoutMs: CHECK_TIMEOUT_MS });
    signal.throwIfAborted();
    const verdictOf = await judge(cfg, index, check, `the backed-up index`);
    if (!verdictOf.healthy) throw new Error(verdictOf.detail);
    const ids = names.has(`${member}${IDS_SUFFIX}`) ? join(dir, `${member}${IDS_SUFFIX}`) : undefined;
    const sidecar = names.has(`${member}${SIDECAR_SUFFIX}`) ? join(dir, `${member}${SIDECAR_SUFFIX}`) : undefined;
    signal.throwIfAborted();
    const sha = await fileSha256(index);
    await publishGeneration(cfg.path, { index, ids });
    // The sidecar describes the restored generation (when it was rebuilt, retrained).
    if (sidecar) await rename(sidecar, sidecarPath(cfg.path));
    lastPublished.set(cfg.name, { at: Date.now(), vectors: verdictOf.vectors ?? 0, sha256: sha.sha256, ids: ids !== undefined, recall: check.facts?.recall?.value });
    return { backup: b, vectors: verdictOf.vectors ?? 0, ids: ids !== undefined, sidecar: sidecar !== undefined, detail: verdictOf.detail };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export default defineAction({
  name: 'faiss-restore',
  description:
    'The runbook\'s "index corruption" fix for a FAISS index (config faiss[]). Unless force is set, it first checks the live ' +
    'index (loads in a child process, id map consistent, recall@10 meets recall_floor) and does nothing when it passes. ' +
    'Otherwise it restores the newest vector_index backup of this index (backup-run\'s tar of the index and its sidecars; ' +
    'at most 5 examined) that passes its SHA-256 check and whose index loads, matches its id map and meets the floor: ' +
    'extracted into a hidden directory beside the index, then the id map and the index are renamed over the live ones ' +
    '(the broken generation kept as <index>.prev) and the backup\'s sidecar restored with them. When no backup passes, it ' +
    'rebuilds from the source table as faiss-rebuild does (fallback: none makes that a failure). The live path changes only ' +
    'by rename, so a failure, abort or kill leaves it as it was. Idempotent: a repeated run finds a healthy index and does ' +
    'nothing. Not disruptive: it acts on a broken index, where waiting for a window prolongs the outage (its fallback ' +
    'rebuild runs at idle CPU priority). Verify: the live file loads, its vector count matches what was restored and its ' +
    'id map, and recall@10 meets the floor.',
  params: Params,
  idempotent: true,
  disruptive: false,
  targetKey: faissTargetKey,

  async plan(ctx, p) {
    const cfg = faissConfig(ctx, p.index);
    if (!p.force) {
      const health = await liveHealth(cfg);
      if (health.healthy) return { summary: `FAISS index "${cfg.name}": ${health.detail}; nothing to restore`, nothingToDo: true };
    }
    const { list, why } = await candidates(ctx, cfg, p.backup);
    const fallback = p.fallback;
    const then = fallback === 'rebuild' ? (cfg.source ? 'else rebuild from the source table' : 'no source table to rebuild from') : 'else fail';
    const first = list[0];
    return {
      summary: first
        ? `restore FAISS index "${cfg.name}" from the newest passing of ${list.length} backup(s), starting with ${first.name} (${first.manifest.created_at}, ${bytes(first.manifest.size_bytes)}); ${then}`
        : `no backup to restore FAISS index "${cfg.name}" from (${why}); ${then}`,
      details: { index: cfg.name, path: cfg.path, backups: list.map((b) => ({ file: b.name, created_at: b.manifest.created_at, size_bytes: b.manifest.size_bytes })), fallback },
    };
  },

  async run(ctx, p, signal): Promise<RunResult> {
    const cfg = faissConfig(ctx, p.index);
    lastPublished.delete(cfg.name);
    const repaired = await reconcileIds(cfg.path);
    const leftovers = await removeLeftovers(cfg.path);
    if (!p.force) {
      const health = await liveHealth(cfg);
      if (health.healthy) return { summary: `FAISS index "${cfg.name}": ${health.detail}; nothing to restore`, details: { index: cfg.name, restored: false, repaired: repaired ?? null } };
    }
    await checkDirectory(cfg.path);
    const { list, why } = await candidates(ctx, cfg, p.backup);
    const rejected: string[] = why ? [why] : [];
    for (const b of list) {
      signal.throwIfAborted();
      try {
        const r = await tryBackup(cfg, b, signal);
        ctx.log.info({ action: 'faiss-restore', index: cfg.name, backup: b.name, vectors: r.vectors }, 'FAISS index restored from backup');
        return {
          summary: `restored FAISS index "${cfg.name}" from backup ${b.name} (${b.manifest.created_at}): ${r.detail}; broken generation kept as ${basename(cfg.path)}.prev`,
          details: {
            index: cfg.name,
            restored: true,
            backup: b.name,
            backup_created_at: b.manifest.created_at,
            vectors: r.vectors,
            ids_restored: r.ids,
            sidecar_restored: r.sidecar,
            rejected,
            leftovers_removed: leftovers,
            ...(repaired ? { repaired } : {}),
          },
        };
      } catch (err) {
        if (signal.aborted) throw err;
        rejected.push(`${b.name}: ${errorText(err)}`);
        ctx.log.warn({ action: 'faiss-restore', index: cfg.name, backup: b.name, problem: errorText(err) }, 'FAISS backup not usable');
      }
    }
    if (p.fallback === 'none') throw new Error(`no usable backup of FAISS index "${cfg.name}": ${rejected.join('; ')}`);
    if (!cfg.source) throw new Error(`no usable backup of FAISS index "${cfg.name}" (${rejected.join('; ')}) and no source table to rebuild from`);
    const { head } = await liveHead(cfg.path);
    const o = await buildAndPublish(ctx, cfg, buildSettings(cfg, {}, head), 'rebuild', signal, head);
    ctx.log.info({ action: 'faiss-restore', index: cfg.name, vectors: o.stats.rows, rejected }, 'FAISS index rebuilt: no usable backup');
    return { summary: `no usable backup (${rejected.join('; ')}); ${outcomeLine('rebuilt', o, cfg)}`, details: { ...outcomeDetails(o, cfg), restored: false, rebuilt: true, rejected } };
  },

  async verify(ctx, p) {
    return verifyPublished(ctx, p.index);
  },
});
