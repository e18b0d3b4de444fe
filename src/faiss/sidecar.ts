// The maintenance sidecar: a small JSON file next to a FAISS index that records when
// housekeeper last rebuilt, retrained or optimized it. The index file itself cannot say
// (FAISS stores no timestamps, and the file's mtime changes with every write by anyone), so
// the action that does the work writes this file, and the FAISS collector reads it.
//
//   <index path>.housekeeper.json
//   {
//     "format": "housekeeper-faiss-sidecar",
//     "version": 1,
//     "index_file": "docs.index",                  // base name of the index it describes
//     "actions": {
//       "rebuild": {
//         "at": "2026-05-06T09:12:44.120Z",        // RFC 3339; when the new index was in place
//         "vectors": 1000000,                      // optional, for people and future checks
//         "dimension": 128,                        // optional
//         "file_size_bytes": 532000045,            // optional
//         "duration_seconds": 312.5,               // optional
//         "remediation_id": "…"                    // optional: the remediation log entry
//       },
//       "retrain": { "at": "…" },
//       "optimize": { "at": "…" }
//     }
//   }
//
// Rules for the writer (recordMaintenance below follows them): write the index first, by
// writing a temporary file in the same directory and renaming it over the old one, then
// record the action here the same way (temporary file + rename), keeping the other actions'
// entries. Readers ignore unknown fields, so later versions may add some; a change that old
// readers would misread bumps `version`.
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export const SIDECAR_SUFFIX = '.housekeeper.json';
export const MAINTENANCE_ACTIONS = ['rebuild', 'retrain', 'optimize'] as const;
export type MaintenanceAction = (typeof MAINTENANCE_ACTIONS)[number];

const Record_ = Type.Object({
  at: Type.String({ minLength: 1 }),
  vectors: Type.Optional(Type.Integer({ minimum: 0 })),
  dimension: Type.Optional(Type.Integer({ minimum: 1 })),
  file_size_bytes: Type.Optional(Type.Integer({ minimum: 0 })),
  duration_seconds: Type.Optional(Type.Number({ minimum: 0 })),
  remediation_id: Type.Optional(Type.String()),
});
export type MaintenanceRecord = Static<typeof Record_>;

const SidecarSchema = Type.Object({
  format: Type.Literal('housekeeper-faiss-sidecar'),
  version: Type.Literal(1),
  index_file: Type.String(),
  actions: Type.Object({
    rebuild: Type.Optional(Record_),
    retrain: Type.Optional(Record_),
    optimize: Type.Optional(Record_),
  }),
});
export type Sidecar = Static<typeof SidecarSchema>;

export function sidecarPath(indexPath: string): string {
  return `${indexPath}${SIDECAR_SUFFIX}`;
}

/** Parses sidecar text: each recorded action's time in epoch seconds. Throws with a reason when invalid. */
export function parseSidecar(text: string): Map<MaintenanceAction, number> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (format !== 'housekeeper-faiss-sidecar') throw new Error(`/format: expected "housekeeper-faiss-sidecar", got ${JSON.stringify(format ?? null).slice(0, 60)}`);
  const first = Value.Errors(SidecarSchema, raw).First();
  if (first) throw new Error(`${first.path || '/'}: ${first.message}`);
  const sidecar = raw as Sidecar;
  const out = new Map<MaintenanceAction, number>();
  for (const action of MAINTENANCE_ACTIONS) {
    const rec = sidecar.actions[action];
    if (!rec) continue;
    const ms = Date.parse(rec.at);
    if (!Number.isFinite(ms)) throw new Error(`/actions/${action}/at: not a valid time: ${JSON.stringify(rec.at).slice(0, 60)}`);
    out.set(action, ms / 1000);
  }
  return out;
}

/**
 * Records that housekeeper did `action` to the index at `indexPath` (for the rebuild/retrain
 * actions). Keeps the other actions' entries; replaces the file atomically.
 */
export async function recordMaintenance(indexPath: string, action: MaintenanceAction, record: MaintenanceRecord): Promise<void> {
  const path = sidecarPath(indexPath);
  let actions: Sidecar['actions'] = {};
  try {
    const old = JSON.parse(await readFile(path, 'utf8')) as unknown;
    if (Value.Check(SidecarSchema, old)) actions = old.actions;
  } catch {
    // none yet, or unreadable: start afresh
  }
  if (!Number.isFinite(Date.parse(record.at))) throw new Error(`recordMaintenance: "at" is not a valid time`);
  const sidecar: Sidecar = { format: 'housekeeper-faiss-sidecar', version: 1, index_file: basename(indexPath), actions: { ...actions, [action]: record } };
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(sidecar, null, 2)}\n`, { mode: 0o644 });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
