// The anchor exporters, as separate processes on free loopback ports, scraping the harness's
// servers: postgres_exporter 0.11 (one process per Postgres server, so its default collectors
// all stay on: with two servers in one DATA_SOURCE_NAME 0.11 answers 500, see bench/scrape.ts)
// and redis_exporter 1.45. Passwords go through the environment, never argv.
//
// No PgBouncer anchor: prometheus-community's pgbouncer_exporter is not packaged in Debian,
// and the one that is (prometheus-pgbouncer-exporter 1.7, a Python exporter) cannot read
// PgBouncer 1.18: it exits at start with KeyError 'total_requests' (SHOW STATS renamed that
// column in PgBouncer 1.8).
import path from 'node:path';
import { freePort } from '../harness/ports.ts';
import { ManagedProcess, cleanEnv, makeTempDir, removeTempDir, waitFor, withPortRetry } from '../harness/proc.ts';
import type { PgServer } from '../harness/postgres.ts';
import type { RedisServer } from '../harness/redis.ts';

export interface AnchorExporter {
  name: string;
  /** http://127.0.0.1:PORT/metrics */
  url: string;
  pid: number;
  proc: ManagedProcess;
}

export interface Anchors {
  exporters: AnchorExporter[];
  /** Stops every exporter (by its pid) and removes the log dir. */
  stop(): Promise<void>;
}

export const POSTGRES_EXPORTER = '/usr/bin/prometheus-postgres-exporter';
export const REDIS_EXPORTER = '/usr/bin/prometheus-redis-exporter';

export interface Spawn {
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Starts one exporter process on a free port (retrying on a bind race), its log in `dir`,
 * and waits until /metrics answers 200.
 */
export async function startExporter(name: string, dir: string, spawn: (port: number) => Spawn): Promise<AnchorExporter> {
  return withPortRetry(freePort, async (port) => {
    const s = spawn(port);
    const proc = new ManagedProcess({
      name: `${name} :${port}`,
      cmd: s.cmd,
      args: s.args,
      env: s.env,
      logFile: path.join(dir, `${name}.log`),
      asOwner: undefined,
      stopSignal: 'SIGTERM',
      exitSignal: 'SIGTERM',
      ...(s.cwd !== undefined ? { cwd: s.cwd } : {}),
    });
    const url = `http://127.0.0.1:${port}/metrics`;
    try {
      await waitFor(
        name,
        proc,
        async () => {
          const r = await fetch(url, { signal: AbortSignal.timeout(5_000) });
          await r.arrayBuffer();
          return r.ok ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
    } catch (err) {
      await proc.stop(5_000);
      throw err;
    }
    return { name, url, pid: proc.pid, proc };
  });
}

export interface AnchorTargets {
  postgres: Array<{ name: string; server: PgServer }>;
  redis: RedisServer;
}

/** Starts the anchors for these servers; on a failure, stops those already started. */
export async function startAnchors(t: AnchorTargets): Promise<Anchors> {
  const dir = makeTempDir('hk-anchors-', undefined);
  const exporters: AnchorExporter[] = [];
  const stop = async (): Promise<void> => {
    await Promise.allSettled(exporters.map((e) => e.proc.stop(10_000)));
    await removeTempDir(dir);
  };
  try {
    for (const { name, server } of t.postgres) {
      const dsn = `${server.url({ db: 'app', user: 'housekeeper' })}?sslmode=disable`;
      exporters.push(
        await startExporter(`postgres_exporter-${name}`, dir, (port) => ({
          cmd: POSTGRES_EXPORTER,
          args: [`--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
          env: cleanEnv({ DATA_SOURCE_NAME: dsn }),
        })),
      );
    }
    exporters.push(
      await startExporter('redis_exporter', dir, (port) => ({
        cmd: REDIS_EXPORTER,
        args: [`-web.listen-address=127.0.0.1:${port}`, `-redis.addr=redis://127.0.0.1:${t.redis.port}`],
        env: cleanEnv({ REDIS_PASSWORD: t.redis.password }),
      })),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { exporters, stop };
}
