import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { BACKUP_KINDS } from '../config.ts';
import { sha256File } from './hash.ts';

// The manifest of a backup made by housekeeper: a JSON sidecar `<backup file>.manifest.json`
// beside the file it describes (docs/backups.md). The collector reads it; the backup-run
// action writes it through publishBackup() below. It holds metadata only — never the
// content, never a URL with a password — so a "secrets" backup is just bytes to it.

export const MANIFEST_SUFFIX = '.manifest.json';
/** Manifests are small; anything bigger is not one of ours and is not read whole. */
export const MANIFEST_MAX_BYTES = 64 * 1024;

/** The `format` that makes verification also run `pg_restore --list` on the file. */
export const PG_DUMP_CUSTOM = 'pg_dump_custom';

// RFC 3339 with a timezone (Z or ±hh:mm); Date.parse must accept it too.
const RFC3339 = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$';
const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' });
const Short = (maxLength: number) => Type.String({ minLength: 1, maxLength });

export const ManifestSchema = Type.Object(
  {
    manifest_version: Type.Literal(1),
    kind: Type.Union(BACKUP_KINDS.map((k) => Type.Literal(k))),
    /** Base name of the backup file, so a manifest copied beside another file does not vouch for it. */
    file: Type.String({ minLength: 1, maxLength: 255, pattern: '^[^/\\\\]+$' }),
    /** When the backup was complete, RFC 3339. */
    created_at: Type.String({ pattern: RFC3339 }),
    size_bytes: Type.Integer({ minimum: 0 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    /** What the bytes are: pg_dump_custom, faiss_index, tar, tar_gz, file, ... */
    format: Type.String({ pattern: '^[a-z0-9][a-z0-9_.+-]{0,63}$' }),
    tool: Type.Object({ name: Short(64), version: Short(64) }, { additionalProperties: false }),
    /** Where the data came from, by config name; never a URL or a credential. */
    source: Type.Object(
      {
        type: Type.String({ pattern: '^[a-z][a-z0-9_]{0,31}$' }),
        target: Type.Optional(Name),
        database: Type.Optional(Short(63)),
        path: Type.Optional(Short(4096)),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type Manifest = Static<typeof ManifestSchema>;

// The shapes of secret a careless writer would put here: user:password@ inside a URL, and
// a password as a URL or connection-string parameter (?password=..., "password=... host=...").
const CREDENTIALS = [/[a-z][a-z0-9+.-]*:\/\/[^/\s@]*:[^/\s@]*@/i, /(^|[?&;\s])(password|passwd|pwd|sslpassword)\s*=/i];

function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) strings(x, out);
  return out;
}

/** True when some string in the value looks like it carries a password. */
export function holdsCredentials(value: unknown): boolean {
  return strings(value).some((s) => CREDENTIALS.some((re) => re.test(s)));
}

/**
 * Checks a parsed manifest; returns the problem in words, or undefined when it is valid. The
 * words never quote the manifest's values (they might be what should not have been there).
 */
export function manifestProblem(value: unknown): string | undefined {
  const err = Value.Errors(ManifestSchema, value).First();
  if (err) return `${err.path || '/'}: ${err.message}`;
  const m = value as Manifest;
  if (!Number.isFinite(Date.parse(m.created_at))) return '/created_at: not a valid time';
  if (m.size_bytes > Number.MAX_SAFE_INTEGER) return '/size_bytes: too large';
  if (holdsCredentials(m)) return 'a value holds credentials';
  return undefined;
}

/** Parses manifest text; throws with a problem that never quotes the text. */
export function parseManifest(text: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('not valid JSON');
  }
  const problem = manifestProblem(value);
  if (problem !== undefined) throw new Error(problem);
  return value as Manifest;
}

export function manifestPath(backupFile: string): string {
  return `${backupFile}${MANIFEST_SUFFIX}`;
}

export interface NewManifest {
  kind: Manifest['kind'];
  format: string;
  tool: Manifest['tool'];
  source: Manifest['source'];
  /** Defaults to now. */
  createdAt?: Date;
}

async function writeDurably(path: string, text: string): Promise<void> {
  const fh = await open(path, 'wx', 0o640);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Publishes a finished backup under its final name with its manifest, for the backup-run
 * action. `tempFile` must already be complete, in the backup directory, under a name that
 * starts with "." (hidden names are never taken for backups). Order: hash the bytes, write
 * the manifest to a hidden temp name, fsync, rename it into place, rename the data into
 * place, fsync the directory. A crash before the last rename leaves at most an orphan
 * manifest (ignored), never a backup without its manifest or a half-written file.
 */
export async function publishBackup(tempFile: string, finalName: string, m: NewManifest): Promise<Manifest> {
  const dir = dirname(tempFile);
  if (!basename(tempFile).startsWith('.')) throw new Error('publishBackup: the temp file name must start with "."');
  if (finalName.includes('/') || finalName.startsWith('.') || finalName.endsWith(MANIFEST_SUFFIX)) {
    throw new Error('publishBackup: the final name must be a plain, visible file name');
  }
  const { sha256, bytes } = await sha256File(tempFile);
  const st = await stat(tempFile);
  if (st.size !== bytes) throw new Error('publishBackup: the file changed while it was hashed');
  const manifest: Manifest = {
    manifest_version: 1,
    kind: m.kind,
    file: finalName,
    created_at: (m.createdAt ?? new Date()).toISOString(),
    size_bytes: bytes,
    sha256,
    format: m.format,
    tool: m.tool,
    source: m.source,
  };
  const problem = manifestProblem(manifest);
  if (problem !== undefined) throw new Error(`publishBackup: invalid manifest: ${problem}`);
  const final = join(dir, finalName);
  const tmpManifest = join(dir, `.${finalName}${MANIFEST_SUFFIX}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeDurably(tmpManifest, `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(tmpManifest, manifestPath(final));
  } catch (err) {
    await rm(tmpManifest, { force: true });
    throw err;
  }
  await rename(tempFile, final);
  await syncDir(dir);
  return manifest;
}
