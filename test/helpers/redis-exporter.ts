// The anchor: Debian's redis_exporter 1.45 (/usr/bin/prometheus-redis-exporter) run against a
// harness Redis on loopback, for tests that compare housekeeper's Redis metrics with it.
import path from 'node:path';
import { freePort } from '../harness/ports.ts';
import { ManagedProcess, cleanEnv, makeTempDir, removeTempDir, waitFor, withPortRetry } from '../harness/proc.ts';
import type { RedisServer } from '../harness/redis.ts';

export const REDIS_EXPORTER_BIN = '/usr/bin/prometheus-redis-exporter';

export interface RedisExporter {
  url: string;
  scrape(): Promise<string>;
  stop(): Promise<void>;
}

export async function startRedisExporter(redis: RedisServer): Promise<RedisExporter> {
  const dir = makeTempDir('hk-redis-exporter-', undefined);
  return withPortRetry(freePort, async (port) => {
    const proc = new ManagedProcess({
      name: `redis_exporter :${port}`,
      cmd: REDIS_EXPORTER_BIN,
      // The password goes in the environment, never argv (visible in ps).
      args: [`-web.listen-address=127.0.0.1:${port}`, `-redis.addr=redis://127.0.0.1:${redis.port}`],
      env: cleanEnv({ REDIS_PASSWORD: redis.password }),
      logFile: path.join(dir, 'redis_exporter.log'),
      asOwner: undefined,
      stopSignal: 'SIGTERM',
      exitSignal: 'SIGTERM',
      cwd: dir,
    });
    const url = `http://127.0.0.1:${port}/metrics`;
    const scrape = async (): Promise<string> => {
      const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const body = await r.text();
      if (!r.ok) throw new Error(`redis_exporter answered ${r.status}`);
      return body;
    };
    try {
      await waitFor('redis_exporter', proc, async () => ((await scrape()).includes('redis_up 1') ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });
    } catch (err) {
      await proc.stop(5_000);
      throw err;
    }
    return {
      url,
      scrape,
      async stop() {
        await proc.stop(5_000);
        await removeTempDir(dir);
      },
    };
  });
}

/** Family name → { type, label names of its samples } from a Prometheus text body. */
export function families(body: string, prefix: string): Map<string, { type: string; labels: Set<string> }> {
  const out = new Map<string, { type: string; labels: Set<string> }>();
  for (const line of body.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t && t[1]!.startsWith(prefix)) out.set(t[1]!, { type: t[2]!, labels: new Set() });
  }
  for (const line of body.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!m) continue;
    // Summary/histogram samples (_sum, _count, _bucket) belong to their family.
    const fam = out.get(m[1]!) ?? out.get(m[1]!.replace(/_(sum|count|bucket)$/, ''));
    if (!fam) continue;
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) fam.labels.add(l[1]!);
  }
  return out;
}
