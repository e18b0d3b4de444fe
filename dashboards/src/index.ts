import type { DashboardModule } from './common.ts';
import overview from './overview.ts';
import postgres from './postgres.ts';
import pgbouncerRedis from './pgbouncer-redis.ts';
import vectorIndex from './vector-index.ts';
import backups from './backups.ts';
import elasticsearchCertificates from './elasticsearch-certificates.ts';
import remediations from './remediations.ts';

export interface DashboardSource extends DashboardModule {
  /** File name under dashboards/. */
  file: string;
}

/** Every dashboard housekeeper ships, in the order the README lists them. */
export const dashboards: readonly DashboardSource[] = [
  { file: 'overview.json', ...overview },
  { file: 'postgres.json', ...postgres },
  { file: 'pgbouncer-redis.json', ...pgbouncerRedis },
  { file: 'vector-index.json', ...vectorIndex },
  { file: 'backups.json', ...backups },
  { file: 'elasticsearch-certificates.json', ...elasticsearchCertificates },
  { file: 'remediations.json', ...remediations },
];
