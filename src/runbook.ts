// The runbook's numbers (docs/architecture.md's table), in one place: the dashboards colour by them
// (dashboards/src/) and `housekeeper check` (src/check/checks.ts) judges by them.
// test/dashboards.test.ts holds each to the threshold its alert in alerts/*.yml fires at.
// Colours follow the alerts: yellow where a warning fires, red where a critical one does.
// Where an alert has only a warning level, red is where `housekeeper check` turns the morning
// check from warn to fail. Ratios are 0..1 (Grafana's `percentunit`), durations in seconds.

const DAY = 86_400;
const HOUR = 3_600;

export const runbook = {
  /** PostgresConnectionsHigh (warning > 80% of usable); the morning check fails at 95%. */
  connections: { warn: 0.8, crit: 0.95 },
  /** PostgresLongRunningQueries: the longest query over 5 s. */
  longQuerySeconds: 5,
  /** PostgresIdleInTransaction: a transaction idle for over 10 minutes. */
  idleInTransactionSeconds: 600,
  /** PostgresDeadTuplesHigh: over 20% of a table's rows dead (and over 10000 of them). */
  deadTupleRatio: 0.2,
  /** PostgresRetentionNotKept: a cleanup/archive entry's oldest row more than 8 days past its older_than (the weekly job plus a day). */
  retentionGraceSeconds: 8 * DAY,
  /** PostgresReplicationLagHigh (warning > 1 s: "under 1 s is healthy"); the morning check fails at 30 s. */
  replicationLagSeconds: { warn: 1, crit: 30 },
  /** RedisMemoryHigh (warning > 75% of maxmemory); the morning check fails at 90%. */
  redisMemory: { warn: 0.75, crit: 0.9 },
  /** RedisCacheHitRatioLow: under 90%, over 10-minute rates. */
  hitRatio: { warn: 0.9 },
  hitRatioWindow: '10m',
  /** RedisRestarted: up for less than 10 minutes (a cold cache). */
  redisRestartedSeconds: 600,
  /** RedisLastSaveTooOld: no RDB save for 3 hours with changes pending. */
  redisLastSaveSeconds: 3 * HOUR,
  /** HostCpuHigh, HostMemoryHigh, HostDiskUsageHigh, HostNetworkUsageHigh: warning / critical. */
  cpu: { warn: 0.7, crit: 0.85 },
  memory: { warn: 0.75, crit: 0.9 },
  disk: { warn: 0.8, crit: 0.95 },
  network: { warn: 0.7, crit: 0.85 },
  /** CertificateExpiringSoon: warning under 30 days (the runbook's "30 days ahead"), critical under 7. */
  certDays: { warn: 30, crit: 7 },
  /** BackupTooOld: daily backups; warning after 26 h, critical after 50 h (a missed night, two). */
  backupAgeSeconds: { warn: 26 * HOUR, crit: 50 * HOUR },
  /** BackupRestoreTestOverdue: weekly (Fridays), warning after 8 days. */
  restoreTestAgeSeconds: { warn: 8 * DAY },
  /** FaissIndexNotRetrained (retrain or rebuild, weekly: 8 days), FaissIndexNotRebuilt (quarterly: 100 days); optimize is monthly (no alert). */
  faissMaintenanceSeconds: { retrain: 8 * DAY, optimize: 32 * DAY, rebuild: 100 * DAY },
  /** FaissVectorsMissing: source rows missing from the index, over 1% of them. */
  faissMissingRatio: 0.01,
  /** FaissRecallLow fires under each index's own recall_floor; 0.9 is the default floor. */
  faissRecallFloorDefault: 0.9,
  /** ElasticsearchIndicesPastRetention: indices deleted after 30 days; alert when the oldest is a day past it. */
  esRetentionSeconds: 30 * DAY,
  esPastRetentionGraceSeconds: DAY,
  /** ElasticsearchSnapshotTooOld: a daily snapshot, warning after 26 h. */
  esSnapshotAgeSeconds: { warn: 26 * HOUR },
} as const;

export { DAY, HOUR };
