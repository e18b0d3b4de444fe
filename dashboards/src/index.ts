import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as overview from './overview.ts';
import * as postgres from './postgres.ts';
import * as pgbouncerRedis from './pgbouncer-redis.ts';
import * as vectorIndex from './vector-index.ts';
import * as backups from './backups.ts';
import * as elasticsearchCertificates from './elasticsearch-certificates.ts';
import * as remediations from './remediations.ts';

export interface DashboardSource {
  /** File name under dashboards/. */
  file: string;
  uid: string;
  build(): dashboard.Dashboard;
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
