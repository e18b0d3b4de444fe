import type { MetricFactory } from '../metrics/registry.ts';
import { BackupWatcher, ERROR_REASONS, SOURCES } from '../backups/watcher.ts';
import { defineCollector } from './collector.ts';

// The backup directory (docs/backups.md): per kind, the newest backup by source (housekeeper,
// with a manifest; foreign, without), how many are kept, whether the newest housekeeper
// backup passed verification and when, the newest that did, and restore tests. Everything
// a scrape reports comes from a listing and caches; hashing and pg_restore run in the
// background (src/backups/watcher.ts). Problems are metrics, never a failed collection.

function declare(f: MetricFactory) {
  const g = f.gauge.bind(f);
  return {
    readable: g('backup_directory_readable', 'Whether the backup directory could be listed (1) or not (0).'),
    files: g('backup_files', 'Backup files kept, by kind and source (housekeeper: with a manifest; foreign: made by another tool).', ['kind', 'source']),
    lastTime: g(
      'backup_last_timestamp_seconds',
      'When the newest backup of this kind and source was made, seconds since epoch (manifest created_at; file mtime for foreign backups; 0: none).',
      ['kind', 'source'],
    ),
    lastSize: g('backup_last_size_bytes', 'Size of the newest backup of this kind and source (0: none).', ['kind', 'source']),
    verified: g(
      'backup_last_verified_success',
      'Whether the newest housekeeper backup of this kind passed verification: size and SHA-256 match its manifest, and a Postgres custom-format dump passes pg_restore --list (0: failed, not verified yet, or none).',
      ['kind'],
    ),
    verifiedTime: g(
      'backup_last_verified_timestamp_seconds',
      'When the newest housekeeper backup of this kind was verified (passed or failed), seconds since epoch (0: not yet).',
      ['kind'],
    ),
    goodTime: g(
      'backup_last_good_timestamp_seconds',
      'When the newest housekeeper backup of this kind that passed verification was made, seconds since epoch (0: none).',
      ['kind'],
    ),
    restoreTime: g(
      'backup_last_restore_test_timestamp_seconds',
      'When the last successful restore test of this kind finished, seconds since epoch (0: never).',
      ['kind'],
    ),
    restoreOk: g('backup_last_restore_test_success', 'Whether the most recent restore test of this kind succeeded (1) or failed (0); absent before the first.', ['kind']),
    errors: g('backup_errors', 'Problems found in the backup directory in its last examination, by reason.', ['reason']),
  };
}
type Metrics = ReturnType<typeof declare>;

export default defineCollector<BackupWatcher, Metrics>({
  name: 'backups',
  enabledByDefault: true,
  // One watcher per runner: it holds the verification cache for the service's life.
  targets: (_t, config) => (config.backups ? [new BackupWatcher(config.backups)] : []),
  metrics: declare,
  async collect(ctx, m) {
    const set = ctx.set;
    const r = await ctx.target.examine(ctx.log);
    set(m.readable, {}, r.readable ? 1 : 0);
    for (const reason of ERROR_REASONS) set(m.errors, { reason }, r.errors[reason]);
    for (const k of r.kinds) {
      const kind = k.kind;
      for (const source of SOURCES) {
        set(m.files, { kind, source }, k.count[source]);
        set(m.lastTime, { kind, source }, k.last[source]?.at ?? 0);
        set(m.lastSize, { kind, source }, k.last[source]?.size ?? 0);
      }
      set(m.verified, { kind }, k.verified.success ? 1 : 0);
      set(m.verifiedTime, { kind }, k.verified.at);
      set(m.goodTime, { kind }, k.lastGood ?? 0);
      set(m.restoreTime, { kind }, k.restoreLastSuccess ?? 0);
      if (k.restoreLatest !== undefined) set(m.restoreOk, { kind }, k.restoreLatest.success ? 1 : 0);
    }
  },
});
