// postgres_exporter 0.11 (Debian's prometheus-postgres-exporter), the anchor housekeeper's
// Postgres metrics follow, run against a harness server so tests can compare what both serve.
import { cleanEnv, makeTempDir, removeTempDir } from '../harness/proc.ts';
import { POSTGRES_EXPORTER, startExporter } from './anchors.ts';

/** The example queries Debian ships (pg_postmaster, pg_stat_user_tables, pg_statio_user_tables, ...). */
export const ANCHOR_QUERIES = '/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml';

export interface Anchor {
  readonly url: string;
  scrape(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts the anchor for one DSN, with its default collectors and Debian's example queries
 * (which dashboards such as 9628 read: pg_postmaster_start_time_seconds, the table families).
 */
export async function startAnchor(dsn: string): Promise<Anchor> {
  const dir = makeTempDir('hk-pg-exporter-', undefined);
  let exporter;
  try {
    exporter = await startExporter('postgres_exporter', dir, (port) => ({
      cmd: POSTGRES_EXPORTER,
      args: [`--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', `--extend.query-path=${ANCHOR_QUERIES}`],
      env: cleanEnv({ DATA_SOURCE_NAME: dsn }),
    }));
  } catch (err) {
    await removeTempDir(dir);
    throw err;
  }
  const { url, proc } = exporter;
  return {
    url,
    async scrape() {
      const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const body = await r.text();
      if (!r.ok) throw new Error(`postgres_exporter answered ${r.status}`);
      return body;
    },
    async stop() {
      await proc.stop(5_000);
      await removeTempDir(dir);
    },
  };
}

/** The metric family names in a text exposition (from its samples, histogram suffixes kept). */
export function familyNames(body: string, prefix: string): Set<string> {
  const names = new Set<string>();
  for (const line of body.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(prefix)) continue;
    const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (m) names.add(m[0]);
  }
  return names;
}

/** Label names of every sample of a family, as sorted comma-joined sets. */
export function labelSets(body: string, name: string): Set<string> {
  const sets = new Set<string>();
  for (const line of body.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const inner = /^[^{ ]*\{(.*)\}/.exec(line)?.[1] ?? '';
    const names = [...inner.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)].map((x) => x[1] ?? '');
    sets.add(names.sort().join(','));
  }
  return sets;
}
