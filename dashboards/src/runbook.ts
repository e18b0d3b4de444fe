// The runbook's numbers as the dashboards colour them (DESIGN.md's table), in one place so
// every panel that shows a quantity uses the same steps as the alert on it (alerts/*.yml).
// Ratios are 0..1 (Grafana's `percentunit`), durations in seconds.

const DAY = 86_400;

export const runbook = {
  /** Postgres client connections over the usable maximum (max - reserved): alert 80%; the morning check fails at 95%. */
  connections: { warn: 0.8, crit: 0.95 },
  /** Queries running longer than this are "long-running" (the collector's default threshold). */
  longQuerySeconds: 5,
  /** Replica lag: under 1 s is healthy; the morning check fails at 30 s. */
  replicationLagSeconds: { warn: 1, crit: 30 },
  /** Redis used memory over maxmemory: alert 75%, critical 90%. */
  redisMemory: { warn: 0.75, crit: 0.9 },
  /** Redis cache hit ratio: healthy above 90%. */
  hitRatio: { warn: 0.9 },
  /** Window the hit ratio is computed over (an hour of quiet traffic is not a cold cache). */
  hitRatioWindow: '10m',
  /** Host (node_exporter): alert / critical. */
  cpu: { warn: 0.7, crit: 0.85 },
  memory: { warn: 0.75, crit: 0.9 },
  disk: { warn: 0.8, crit: 0.95 },
  network: { warn: 0.7, crit: 0.85 },
  /** Certificates: check expiry 30 days ahead; under 7 days is critical. */
  certDays: { warn: 30, crit: 7 },
  /** Backups are daily: the newest older than a day is late; a restore test is weekly (8 days with slack). */
  backupAgeSeconds: { warn: DAY, crit: 2 * DAY },
  restoreTestAgeSeconds: { warn: 8 * DAY },
  /** FAISS maintenance cadence: retrain weekly, optimize monthly, rebuild quarterly (each with a day of slack). */
  faissMaintenanceSeconds: { retrain: 8 * DAY, optimize: 32 * DAY, rebuild: 93 * DAY },
  /** Elasticsearch: indices older than 30 days are deleted; a snapshot is taken daily. */
  esRetentionSeconds: 30 * DAY,
  esSnapshotAgeSeconds: { warn: DAY, crit: 2 * DAY },
} as const;

export { DAY };
