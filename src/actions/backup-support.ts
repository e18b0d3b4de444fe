import { Type } from '@sinclair/typebox';
import { open } from 'node:fs/promises';
import type { BackupsConfig } from '../config.ts';
import { BACKUPS_TARGET } from '../backups/watcher.ts';
import type { ActionContext } from './action.ts';

// What the three backup actions (backup-run, backup-verify, restore-test) share.

/** All three touch the one backup directory: the engine runs them one at a time, across replicas. */
export const BACKUPS_TARGET_KEY = `backups:${BACKUPS_TARGET}`;

/** A backup kind in params (backup-verify). backup-run makes database, vector_index and configuration; the others come from other tools. */
export const Kind = Type.Union(
  ['database', 'vector_index', 'configuration', 'document_store', 'secrets'].map((k) => Type.Literal(k)),
  { description: 'a backup kind (config backups.kinds)' },
);

export function backupsConfig(ctx: ActionContext): BackupsConfig {
  const b = ctx.config.backups;
  if (!b) throw new Error('no backups section in config: the backup actions need backups.directory and backups.kinds');
  return b;
}

/** Creates an empty file that only the service's user can read (dumps hold every row of the database). */
export async function createPrivateFile(path: string): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  await fh.close();
}

export async function writePrivateFile(path: string, data: string | Buffer): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
