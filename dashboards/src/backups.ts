// Backups by kind (database, vector index snapshot, configuration, document store, secrets):
// age of the newest, verification, restore tests, sizes and problems in the directory.
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { backupsVerifiedStat, newestBackupAgeStat } from './check-stats.ts';
import {
  columns,
  defineDashboard,
  higherIsWorse,
  instant,
  newestBackupAge,
  query,
  row,
  sel,
  stat,
  steps,
  table,
  tableQuery,
  timeseries,
  upStat,
  withThresholdLines,
  yesNoStat,
  zeroIsGood,
} from './common.ts';
import { DAY, HOUR, runbook as r } from '../../src/runbook.ts';

export default defineDashboard({
  uid: 'housekeeper-backups',
  title: 'Housekeeper / Backups',
  description: 'Backups by kind: age of the newest, integrity verification, weekly restore tests, sizes, and problems found in the backup directory.',
  targetSelector: 'backup_directory_readable',
  tags: ['backups'],
  rows,
});

function rows(d: dashboard.DashboardBuilder): void {
  const s = sel();

  d.withRow(row('Freshness'))
    .withPanel(upStat('Backup directory', 'Whether the backup directory could be listed.').withTarget(instant(`min by (target) (backup_directory_readable${s})`, '{{target}}')))
    .withPanel(
      newestBackupAgeStat('Newest backup age', `Age of the newest backup of each kind, from housekeeper or another tool. Runbook: daily; alert after ${r.backupAgeSeconds.warn / HOUR} h, critical after ${r.backupAgeSeconds.crit / HOUR} h.`).span(10),
    )
    .withPanel(
      stat('Problems', 'none', 'Problems found in the backup directory in its last examination.')
        .span(10)
        .withTarget(instant(`sum by (reason) (max by (target, reason) (backup_errors${s}))`, '{{reason}}'))
        .thresholds(zeroIsGood('yellow')),
    );

  d.withRow(row('Integrity'))
    .withPanel(
      backupsVerifiedStat('Verified', 'Whether the newest housekeeper backup of each kind passed verification: size and SHA-256 match its manifest, and a Postgres dump passes pg_restore --list.').span(8),
    )
    .withPanel(
      stat('Newest good backup age', 's', `Age of the newest backup of each kind that passed verification (same steps as the newest backup's age: ${r.backupAgeSeconds.warn / HOUR} h, ${r.backupAgeSeconds.crit / HOUR} h).`)
        .span(8)
        .withTarget(instant(`time() - max by (kind) (backup_last_good_timestamp_seconds${s})`, '{{kind}}'))
        .thresholds(higherIsWorse(r.backupAgeSeconds.warn, r.backupAgeSeconds.crit))
        .decimals(1),
    )
    .withPanel(
      stat('Last restore test', 's', `Time since the last successful restore test of each kind. Runbook: weekly (Fridays); the alert fires after ${r.restoreTestAgeSeconds.warn / DAY} days.`)
        .span(8)
        .withTarget(instant(`time() - max by (kind) (backup_last_restore_test_timestamp_seconds${s})`, '{{kind}}'))
        .thresholds(steps('green', [r.restoreTestAgeSeconds.warn, 'yellow']))
        .decimals(1),
    )
    .withPanel(
      yesNoStat('Restore test result', 'Whether the most recent restore test of each kind succeeded (no value before the first).', 'PASSED', 'FAILED')
        .span(8)
        .withTarget(instant(`min by (kind) (backup_last_restore_test_success${s})`, '{{kind}}'))
        .noValue('never run'),
    )
    .withPanel(
      columns(
        table('Backups by kind and source', 'bytes', 'Per kind and source (housekeeper: with a manifest; foreign: made by another tool): files kept and size of the newest.')
          .span(16)
          .withTarget(tableQuery(`max by (kind, source) (backup_files${s})`).refId('count'))
          .withTarget(tableQuery(`max by (kind, source) (backup_last_size_bytes${s})`).refId('size')),
        { rename: { 'Value #count': 'files', 'Value #size': 'newest size' } },
      ).overrideByName('files', [{ id: 'unit', value: 'short' }]),
    );

  d.withRow(row('History'))
    .withPanel(
      withThresholdLines(timeseries('Newest backup age', 's', 'Age of the newest backup of each kind; it should fall back to minutes every night.').min(0), higherIsWorse(r.backupAgeSeconds.warn, r.backupAgeSeconds.crit))
        .withTarget(query(newestBackupAge(), '{{kind}}')),
    )
    .withPanel(
      timeseries('Newest backup size', 'bytes', 'Size of the newest backup of each kind and source: a sudden drop is worth a look.').withTarget(
        query(`max by (kind, source) (backup_last_size_bytes${s})`, '{{kind}} {{source}}'),
      ),
    );
}
