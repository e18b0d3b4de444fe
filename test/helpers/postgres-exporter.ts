// postgres_exporter 0.11 (Debian's prometheus-postgres-exporter), the anchor housekeeper's
// Postgres metrics follow, run against a harness server so tests can compare what both serve.
import path from 'node:path';
import { freePort } from '../harness/ports.ts';
import { ManagedProcess, cleanEnv, makeTempDir, removeTempDir, waitFor, withPortRetry } from '../harness/proc.ts';

export const ANCHOR_BIN = '/usr/bin/prometheus-postgres-exporter';
/** The example queries Debian ships (pg_postmaster, pg_stat_user_tables, pg_statio_user_tables, ...). */
export const ANCHOR_QUERIES = '/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml';

export interface Anchor {
  readonly url: string;
  scrape(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts the anchor on a free loopback port for one DSN; resolves once /metrics answers. */
export async function startAnchor(dsn: string): Promise<Anchor> {
  const dir = makeTempDir('hk-pg-exporter-', undefined);
  return withPortRetry(freePort, async (port) => {
    const proc = new ManagedProcess({
      name: `postgres_exporter :${port}`,
      cmd: ANCHOR_BIN,
      args: [`--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', `--extend.query-path=${ANCHOR_QUERIES}`],
      env: cleanEnv({ DATA_SOURCE_NAME: dsn }),
      logFile: path.join(dir, 'postgres_exporter.log'),
      asOwner: undefined,
      stopSignal: 'SIGTERM',
      exitSignal: 'SIGTERM',
    });
    const url = `http://127.0.0.1:${port}/metrics`;
    const scrape = async (): Promise<string> => {
      const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const body = await r.text();
      if (!r.ok) throw new Error(`postgres_exporter answered ${r.status}`);
      return body;
    };
    const stop = async (): Promise<void> => {
      await proc.stop(5_000);
      await removeTempDir(dir);
    };
    try {
      await waitFor('postgres_exporter', proc, async () => ((await scrape().catch(() => undefined)) === undefined ? undefined : true), { timeoutMs: 30_000, intervalMs: 100 });
    } catch (err) {
      await stop();
      throw err;
    }
    return { url, scrape, stop };
  });
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
