// What the benches share: paths, knobs from the environment, Prometheus's scrape request,
// and the figures' arithmetic and formatting.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnv, writeOwnedFile } from '../test/harness/proc.ts';
import type { Stack } from '../test/harness/stack.ts';
import { startExporter, type AnchorExporter } from '../test/helpers/anchors.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** bench/results/<name>.md */
export function resultsFile(name: string): string {
  return path.join(ROOT, 'bench', 'results', `${name}.md`);
}

/** An integer knob from the environment, `dflt` when unset; outside [min, max] is an error. */
export function intEnv(name: string, dflt: number, min: number, max: number): number {
  const raw = process.env[name];
  const n = raw === undefined ? dflt : Number.parseInt(raw, 10);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}]`);
  return n;
}

/** Progress lines on stderr, prefixed with the bench's name (stdout carries the results). */
export function benchLog(name: string): (msg: string) => void {
  return (msg) => void process.stderr.write(`bench/${name}: ${msg}\n`);
}

// What Prometheus 2.42 sends: it negotiates OpenMetrics, accepts gzip and announces its timeout.
export const PROMETHEUS_HEADERS: Readonly<Record<string, string>> = {
  accept:
    'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
  'accept-encoding': 'gzip',
  'user-agent': 'Prometheus/2.42.0',
  'x-prometheus-scrape-timeout-seconds': '10',
};

export const SCRAPE_TIMEOUT_MS = 15_000;

export interface Scrape {
  ms: number;
  body: string;
  contentType: string;
}

/** One scrape as Prometheus makes it, timed from request to the end of the decoded body. */
export async function scrape(url: string): Promise<Scrape> {
  const t0 = performance.now();
  const r = await fetch(url, { headers: PROMETHEUS_HEADERS, signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
  const body = await r.text();
  const ms = performance.now() - t0;
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}: ${body.slice(0, 300)}`);
  return { ms, body, contentType: r.headers.get('content-type') ?? '' };
}

/** The q-quantile (nearest rank) of unsorted values (undefined when there are none). */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

export const f1 = (n: number): string => n.toFixed(1);
export const f2 = (n: number): string => n.toFixed(2);

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads), in milliseconds, from /proc/PID/stat. */
export function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": state is field 3, utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK;
}

/** housekeeper from `root` as `npm start` runs it: its dist/ build (built here first, so the build is not measured). */
export async function startHousekeeper(root: string, dir: string, s: Stack, nodeFlags: readonly string[] = []): Promise<AnchorExporter> {
  execFileSync('bash', [path.join(root, 'scripts', 'node.sh'), path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  fs.writeFileSync(path.join(root, 'dist', '.built'), '');
  const configFile = path.join(dir, 'housekeeper.yml');
  const hk = await startExporter('housekeeper', dir, (port) => {
    writeOwnedFile(
      configFile,
      [
        `server: { host: 127.0.0.1, port: ${port} }`,
        'log: { level: warn }',
        'postgres:',
        `  - { name: primary, url: "${s.primary.url({ db: 'app', user: 'housekeeper' })}" }`,
        `  - { name: replica, url: "${s.replica.url({ db: 'app', user: 'housekeeper' })}" }`,
        'pgbouncer:',
        `  - { name: pgbouncer, url: "${s.pgbouncer.adminUrl()}" }`,
        'redis:',
        `  - { name: redis, url: "${s.redis.url(0)}" }`,
        '',
      ].join('\n'),
      undefined,
    );
    return { cmd: 'bash', args: [path.join(root, 'scripts', 'start.sh')], env: cleanEnv({ HOUSEKEEPER_CONFIG: configFile, HOUSEKEEPER_NODE_FLAGS: nodeFlags.join(' ') }), cwd: root };
  });
  // scripts/start.sh and scripts/node.sh exec node (setpriv execs bash): the pid is node's own.
  const exe = fs.readlinkSync(`/proc/${hk.pid}/exe`);
  const cmdline = fs.readFileSync(`/proc/${hk.pid}/cmdline`, 'utf8').split('\0');
  if (path.basename(exe) !== 'node' || !cmdline.some((a) => a.endsWith('dist/src/main.js'))) {
    throw new Error(`pid ${hk.pid} is not housekeeper's node process: exe ${exe}, cmdline ${cmdline.join(' ')}`);
  }
  return hk;
}
