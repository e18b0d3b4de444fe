import { utimes } from 'node:fs/promises';
import { Type, type Static } from '@sinclair/typebox';
import type { BackupKindName, BackupsConfig } from '../config.ts';
import { listBackups, type Listing, type StoredBackup } from '../backups/store.ts';
import { verifyBackup, type Verdict } from '../backups/verify.ts';
import { BACKUP_KINDS } from '../config.ts';
import { defineAction, type ActionContext } from './action.ts';
import { backupsConfig, BACKUPS_TARGET_KEY, bytes, Kind } from './backup-support.ts';
import { plural } from './support.ts';

// The runbook's daily integrity check: re-reads housekeeper's backups and checks them
// against their manifests (size, SHA-256; pg_restore --list for dumps), with the same code
// the backups collector uses (verifyBackup). The collector keeps its verdicts in memory,
// keyed by each file's identity, and does not hash a file again while that identity stays;
// so bit rot that keeps size and mtime is invisible to it. When this action finds such a
// file failing, it sets the file's mtime to now: a new identity, which the collector (as
// docs/backups.md says of any touched file) verifies again on its next pass and then
// reports as backup_last_verified_success 0 / backup_errors{reason}. Nothing else is
// written; the action's own result is in the remediation log.

const Params = Type.Object(
  {
    kinds: Type.Optional(
      Type.Array(Kind, { minItems: 1, maxItems: 5, uniqueItems: true, description: 'kinds to check; default every configured kind' }),
    ),
    scope: Type.Union([Type.Literal('newest'), Type.Literal('all')], {
      default: 'newest',
      description: 'newest: the newest backup of each kind and source; all: every kept housekeeper backup',
    }),
  },
  { additionalProperties: false },
);
type P = Static<typeof Params>;

interface Checked {
  kind: BackupKindName;
  file: string;
  status: Verdict['status'];
  reason?: string;
  detail: string;
  /** The file's mtime was moved so the collector verifies it again. */
  touched?: boolean;
}

interface Outcome {
  checked: Checked[];
  /** Kinds the params name explicitly that have no housekeeper backup. */
  empty: BackupKindName[];
}

/** The selection: per kind and source, the newest (or every) housekeeper backup. */
function select(cfg: BackupsConfig, listing: Listing, p: P): { files: StoredBackup[]; kinds: BackupKindName[] } {
  const kinds = (p.kinds as BackupKindName[] | undefined) ?? BACKUP_KINDS.filter((k) => cfg.kinds[k] !== undefined);
  for (const k of kinds) if (cfg.kinds[k] === undefined) throw new Error(`backups.kinds.${k} is not configured`);
  const files: StoredBackup[] = [];
  const seen = new Set<string>();
  for (const b of listing.backups) {
    if (!kinds.includes(b.kind)) continue;
    if (p.scope === 'newest') {
      if (seen.has(b.group)) continue;
      seen.add(b.group);
    }
    files.push(b);
  }
  return { files, kinds };
}

async function check(ctx: ActionContext, p: P, signal?: AbortSignal): Promise<Outcome> {
  const cfg = backupsConfig(ctx);
  const listing = await listBackups(cfg);
  const { files, kinds } = select(cfg, listing, p);
  const checked: Checked[] = [];
  // A backup whose manifest is unusable fails as it stands (as in the collector).
  for (const inv of listing.invalid) {
    if (kinds.includes(inv.kind)) checked.push({ kind: inv.kind, file: inv.name, status: 'failed', reason: 'manifest_invalid', detail: inv.problem });
  }
  for (const b of files) {
    signal?.throwIfAborted();
    const v = await verifyBackup(b.path, b.identity, b.manifest, signal ? { signal } : {});
    const c: Checked = { kind: b.kind, file: b.name, status: v.status, detail: v.detail, ...(v.reason ? { reason: v.reason } : {}) };
    if (v.status === 'failed') {
      const now = new Date();
      await utimes(b.path, now, now).then(
        () => (c.touched = true),
        () => undefined,
      );
    }
    checked.push(c);
  }
  const explicit = (p.kinds as BackupKindName[] | undefined) ?? [];
  const empty = explicit.filter((k) => !listing.backups.some((b) => b.kind === k));
  return { checked, empty };
}

const lastRun = new Map<string, Outcome>();
const runKey = (p: P): string => JSON.stringify([[...((p.kinds as string[] | undefined) ?? [])].sort(), p.scope]);

function judge(o: Outcome): { fixed: boolean; detail: string } {
  const bad = o.checked.filter((c) => c.status !== 'ok');
  const problems = [
    ...bad.map((c) => `${c.kind} ${c.file}: ${c.status === 'retry' ? 'could not be checked' : 'FAILED'} (${c.reason ?? c.status}: ${c.detail})`),
    ...o.empty.map((k) => `${k}: no housekeeper backup`),
  ];
  if (problems.length > 0) return { fixed: false, detail: problems.join('; ') };
  if (o.checked.length === 0) return { fixed: false, detail: 'no housekeeper backups to check' };
  return { fixed: true, detail: `${plural(o.checked.length, 'backup')} passed: ${o.checked.map((c) => c.file).join(', ')}` };
}

export default defineAction({
  name: 'backup-verify',
  description:
    'Re-checks housekeeper\'s backups in backups.directory against their manifests: size and SHA-256 (streamed), and ' +
    'pg_restore --list for Postgres dumps, with the collector\'s own code — the newest backup of each kind and source ' +
    '(scope newest) or every kept one (scope all). A backup whose manifest is invalid fails. A failing file gets its mtime ' +
    'set to now so that the backups collector, whose verdicts are cached per file identity, verifies it again and reports ' +
    'the failure; nothing else is written, backups are never modified or deleted. Read-only otherwise; idempotent. ' +
    'Verify: every checked backup passed (and each kind named in params has at least one).',
  params: Params,
  idempotent: true,
  disruptive: false,
  targetKey: () => BACKUPS_TARGET_KEY,

  async plan(ctx, p) {
    const cfg = backupsConfig(ctx);
    const listing = await listBackups(cfg);
    const { files, kinds } = select(cfg, listing, p);
    const total = files.reduce((n, b) => n + b.manifest.size_bytes, 0);
    const invalid = listing.invalid.filter((i) => kinds.includes(i.kind)).length;
    const explicit = (p.kinds as BackupKindName[] | undefined) !== undefined;
    return {
      summary:
        `check ${plural(files.length, 'backup')} (${bytes(total)}) of ${kinds.join(', ')} against their manifests` +
        (invalid > 0 ? `; ${plural(invalid, 'backup')} with an invalid manifest` : ''),
      details: { files: files.map((b) => ({ kind: b.kind, file: b.name, size_bytes: b.manifest.size_bytes, format: b.manifest.format })), invalid },
      // Nothing of ours to check, and nothing asked for by name: say so instead of failing.
      nothingToDo: files.length === 0 && invalid === 0 && !explicit,
    };
  },

  async run(ctx, p, signal) {
    const o = await check(ctx, p, signal);
    lastRun.set(runKey(p), o);
    const passed = o.checked.filter((c) => c.status === 'ok').length;
    const failed = o.checked.filter((c) => c.status === 'failed');
    const incomplete = o.checked.filter((c) => c.status === 'retry').length;
    for (const c of failed) ctx.log.warn({ action: 'backup-verify', kind: c.kind, file: c.file, reason: c.reason, detail: c.detail }, 'backup failed verification');
    return {
      summary:
        `checked ${plural(o.checked.length, 'backup')}: ${passed} passed` +
        (failed.length > 0 ? `, ${failed.length} failed (${failed.map((c) => `${c.file}: ${c.reason}`).join(', ')})` : '') +
        (incomplete > 0 ? `, ${incomplete} could not be checked` : ''),
      details: { checked: o.checked, empty_kinds: o.empty },
    };
  },

  async verify(ctx, p) {
    return judge(lastRun.get(runKey(p)) ?? (await check(ctx, p)));
  },
});
