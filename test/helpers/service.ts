import { buildApp, type App } from '../../src/app.ts';
import { configFrom, memoryLogger } from './config.ts';
import { until } from './wait.ts';

/** housekeeper built from YAML and listening on a free loopback port, with its log in memory. */
export interface Service {
  app: App;
  url: string;
  lines: string[];
  /** GET /metrics over real HTTP; headers as Prometheus would send them. */
  scrape(headers?: Record<string, string>): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

export async function startService(yaml: string): Promise<Service> {
  const { log, lines } = memoryLogger();
  const app = buildApp({ config: configFrom(yaml), log });
  await app.server.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.addresses().find((a) => typeof a === 'object');
  if (!addr) throw new Error('service did not listen');
  const url = `http://127.0.0.1:${addr.port}`;
  return {
    app,
    url,
    lines,
    async scrape(headers = {}) {
      // A bound on the test's side: a scrape that never answers fails the test.
      const r = await fetch(`${url}/metrics`, { headers, signal: AbortSignal.timeout(30_000) });
      return { status: r.status, body: await r.text() };
    },
    close: () => app.close(),
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text format samples (enough for our own output). */
function parseSamples(body: string): Sample[] {
  const out: Sample[] = [];
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = l[2] as string;
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

/** Samples of a metric whose labels include all the given ones. */
export function find(body: string, name: string, labels: Record<string, string> = {}): Sample[] {
  return parseSamples(body).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The one value of a metric with these labels; undefined if absent, an error if ambiguous. */
export function value(body: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = find(body, name, labels);
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} series`);
  return found[0]?.value;
}

/**
 * Scrapes every 250 ms until a 200 body satisfies the predicate; returns that body. Bounded:
 * fails naming `what` after `timeoutMs`. Waiting for a condition, not asserting a time.
 */
export function scrapeUntil(
  svc: Service,
  what: string,
  predicate: (body: string) => boolean,
  timeoutMs = 30_000,
): Promise<string> {
  return until(what, async () => {
    const r = await svc.scrape();
    return r.status === 200 && predicate(r.body) ? r.body : undefined;
  }, { timeoutMs, intervalMs: 250 });
}
