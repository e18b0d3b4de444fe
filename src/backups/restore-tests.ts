import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { BACKUP_KINDS, type BackupKindName } from '../config.ts';
import { holdsCredentials } from './manifest.ts';

// Results of restore tests: one JSON object per line in `restore-tests.jsonl` in the backup
// directory (docs/backups.md). The restore-test action appends a line per test; the
// collector reads the file's tail. JSON lines because appends are cheap and atomic enough
// (one write of one short line), history stays readable with `tail`, and nothing needs a
// database that the restore test may itself be testing.

export const RESTORE_TESTS_FILE = 'restore-tests.jsonl';
/** Only the file's tail is read: a weekly test writes ~50 lines a year; 1 MiB is decades. */
export const RESTORE_TESTS_TAIL_BYTES = 1 << 20;

const RFC3339 = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$';
const Time = Type.String({ pattern: RFC3339 });

export const RestoreTestSchema = Type.Object(
  {
    record_version: Type.Literal(1),
    kind: Type.Union(BACKUP_KINDS.map((k) => Type.Literal(k))),
    /** Base name of the backup file that was restored. */
    backup: Type.String({ minLength: 1, maxLength: 255, pattern: '^[^/\\\\]+$' }),
    backup_sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
    started_at: Type.Optional(Time),
    finished_at: Time,
    success: Type.Boolean(),
    /** Config name of the server the backup was compared with (never a URL). */
    target: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' })),
    /** The scratch database the backup was restored into (dropped afterwards). */
    scratch_database: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    /** What was compared, e.g. row counts of configured tables. */
    checks: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200 }),
            expected: Type.Union([Type.Number(), Type.String({ maxLength: 200 })]),
            actual: Type.Union([Type.Number(), Type.String({ maxLength: 200 }), Type.Null()]),
            ok: Type.Boolean(),
          },
          { additionalProperties: false },
        ),
        { maxItems: 1000 },
      ),
    ),
    /** Why it failed, in words; null or absent on success. */
    error: Type.Optional(Type.Union([Type.String({ maxLength: 2000 }), Type.Null()])),
    tool: Type.Optional(
      Type.Object(
        { name: Type.String({ minLength: 1, maxLength: 64 }), version: Type.String({ minLength: 1, maxLength: 64 }) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type RestoreTestRecord = Static<typeof RestoreTestSchema>;

/** The problem with a record in words (never quoting its values), or undefined when valid. */
export function restoreTestProblem(value: unknown): string | undefined {
  const err = Value.Errors(RestoreTestSchema, value).First();
  if (err) return `${err.path || '/'}: ${err.message}`;
  const r = value as RestoreTestRecord;
  if (!Number.isFinite(Date.parse(r.finished_at))) return '/finished_at: not a valid time';
  if (r.started_at !== undefined && !Number.isFinite(Date.parse(r.started_at))) return '/started_at: not a valid time';
  if (holdsCredentials(r)) return 'a value holds credentials';
  return undefined;
}

/**
 * Appends one record (for the restore-test action). Validates first; one write of one line;
 * starts a new line if a previous writer died mid-line, so one torn line cannot swallow the
 * next record; fsyncs before returning.
 */
export async function appendRestoreTest(directory: string, record: RestoreTestRecord): Promise<void> {
  const problem = restoreTestProblem(record);
  if (problem !== undefined) throw new Error(`appendRestoreTest: invalid record: ${problem}`);
  const fh = await open(join(directory, RESTORE_TESTS_FILE), constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o640);
  try {
    const { size } = await fh.stat();
    let lead = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) lead = '\n';
    }
    await fh.write(`${lead}${JSON.stringify(record)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface RestoreTestSummary {
  /** Per kind: finished_at (epoch seconds) of the newest successful test. */
  lastSuccess: Map<BackupKindName, number>;
  /** Per kind: the newest test by finished_at, successful or not. */
  latest: Map<BackupKindName, { at: number; success: boolean }>;
  /** Lines in the tail that are not valid records. */
  invalid: number;
}

/** Summarises the text of the file's tail; `partialFirst` drops a first line cut by the tail. */
export function summariseRestoreTests(text: string, partialFirst: boolean): RestoreTestSummary {
  const out: RestoreTestSummary = { lastSuccess: new Map(), latest: new Map(), invalid: 0 };
  const lines = text.split('\n');
  if (partialFirst) lines.shift();
  for (const line of lines) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      out.invalid++;
      continue;
    }
    if (restoreTestProblem(value) !== undefined) {
      out.invalid++;
      continue;
    }
    const r = value as RestoreTestRecord;
    const at = Date.parse(r.finished_at) / 1000;
    const latest = out.latest.get(r.kind);
    if (latest === undefined || at >= latest.at) out.latest.set(r.kind, { at, success: r.success });
    if (r.success && at > (out.lastSuccess.get(r.kind) ?? -Infinity)) out.lastSuccess.set(r.kind, at);
  }
  return out;
}

/** Reads the last RESTORE_TESTS_TAIL_BYTES of an open regular file and summarises them. */
export async function readRestoreTests(path: string): Promise<RestoreTestSummary> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREGULAR' });
    const start = Math.max(0, st.size - RESTORE_TESTS_TAIL_BYTES);
    const buf = Buffer.alloc(st.size - start);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, start + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return summariseRestoreTests(buf.subarray(0, got).toString('utf8'), start > 0);
  } finally {
    await fh.close();
  }
}
