import { Type, type Static, type TOptional } from '@sinclair/typebox';
import { Duration, failAt, normaliseFields, resolvePath, type Ctx, type Normalised } from './schema.ts';

// backups: the directory the backup collector watches and backup-run writes, by kind.

// A glob of names in the backup directory itself (no "/": subdirectories are not searched).
const BackupKind = Type.Object(
  { pattern: Type.String({ minLength: 1, pattern: '^[^/]+$', description: 'glob of file names in the backup directory, without "/"' }) },
  { additionalProperties: false, description: 'a kind of backup' },
);

const KINDS = ['database', 'vector_index', 'configuration', 'document_store', 'secrets'] as const;
export type BackupKindName = (typeof KINDS)[number];
export const BACKUP_KINDS: readonly BackupKindName[] = KINDS;

const BackupKinds = Type.Object(
  Object.fromEntries(BACKUP_KINDS.map((k) => [k, Type.Optional(BackupKind)])) as Record<BackupKindName, TOptional<typeof BackupKind>>,
  { additionalProperties: false, description: 'the runbook\'s backup kinds, each a glob of file names' },
);

export const BackupsSchema = Type.Object(
  {
    directory: Type.String({ minLength: 1, description: 'directory holding the backups, relative to the config file' }),
    kinds: BackupKinds,
    verify_interval: Duration('how often the newest backup of each kind is verified', '10m'),
    retention: Type.Object(
      {
        keep: Type.Integer({ minimum: 1, maximum: 10_000, default: 7, description: 'newest backups kept per kind and source' }),
        max_age: Type.Optional(Duration('backups older than this are pruned (the newest always stays)')),
      },
      { additionalProperties: false, default: {}, description: 'what backup-run keeps of its own backups, those with a manifest, per kind and source' },
    ),
  },
  { additionalProperties: false, description: 'optional: the backup directory, watched and written by backup-run' },
);

/** `directory` is absolute. backup-run prunes its own backups per kind and source: at most
 *  `retention.keep`, none older than `retention.maxAgeMs` (the newest always stays).
 *  Hand-written around the derived part: `kinds` is keyed by kind name, kept as written. */
export type BackupsConfig = Omit<Normalised<Static<typeof BackupsSchema>>, 'kinds'> & { kinds: Static<typeof BackupKinds> };

/** Undefined when the file has no backups section. */
export function normaliseBackups(raw: Static<typeof BackupsSchema> | undefined, ctx: Ctx): BackupsConfig | undefined {
  if (raw === undefined) return undefined;
  const out = normaliseFields(BackupsSchema, raw, ['backups'], ctx);
  if (out.retention.maxAgeMs === 0) failAt(ctx, ['backups', 'retention', 'max_age'], 'must be longer than 0');
  return { ...out, directory: resolvePath(ctx, raw.directory), kinds: raw.kinds };
}
