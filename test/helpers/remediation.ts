import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import pg from 'pg';
import { defineAction, type AnyAction } from '../../src/actions/action.ts';
import { buildApp, type App } from '../../src/app.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { createRemediation } from '../../src/remediation/index.ts';
import { createTargets } from '../../src/targets/index.ts';
import { configFrom, memoryLogger } from './config.ts';
import { elapse, until as waitUntil } from './wait.ts';

/**
 * An action for engine tests whose effect is real and countable: each run inserts a row
 * into `runs` in a real Postgres database, and verify reads the verdict the test set in
 * `verdicts`. The engine under test cannot tell it from a real fix.
 */
export function countingAction(dbUrl: string): AnyAction {
  const pool = new pg.Pool({ connectionString: dbUrl, max: 4 });
  // Idle connections die when the test's server stops; that is not a test failure.
  pool.on('error', () => {});
  return defineAction({
    name: 'test-count',
    description: 'test action: records a run, verifies by the verdict the test set',
    params: Type.Object({
      target: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' }),
      wait_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
      /** verify never answers and ignores its signal: a check against a server that hangs. */
      verify_hangs: Type.Optional(Type.Boolean()),
    }),
    idempotent: true,
    disruptive: false,
    targetKey: (p) => `test:${p.target}`,
    async plan(_ctx, p) {
      return { summary: `count a run on ${p.target}` };
    },
    async run(_ctx, p, signal) {
      if (p.wait_ms) await elapse(p.wait_ms, 'a slow action, cut short by an abort like real work', signal);
      await pool.query('INSERT INTO runs (target) VALUES ($1)', [p.target]);
      return { summary: `counted ${p.target}` };
    },
    async verify(_ctx, p) {
      if (p.verify_hangs) return new Promise<never>(() => {});
      const { rows } = await pool.query<{ fixed: boolean }>('SELECT fixed FROM verdicts WHERE target = $1', [p.target]);
      return { fixed: rows[0]?.fixed ?? true, detail: `verdict ${String(rows[0]?.fixed ?? true)}` };
    },
  });
}

export async function prepareCountingDb(dbUrl: string): Promise<void> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS runs (id serial, target text, at timestamptz DEFAULT now()); CREATE TABLE IF NOT EXISTS verdicts (target text PRIMARY KEY, fixed boolean)');
  await c.end();
}

export function rulesDir(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hk-rules-'));
  writeFileSync(join(dir, 'rules.yml'), yaml);
  return dir;
}

export interface Instance {
  app: App;
  url: string;
  lines: string[];
  post(body: unknown, headers?: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }>;
  close(): Promise<void>;
}

export const TOKEN = 'test-token-0123456789abcdef';

/** One housekeeper replica with remediation on, listening on a free port. */
export async function startInstance(yaml: string, actions: readonly AnyAction[], env: NodeJS.ProcessEnv = { HOUSEKEEPER_WEBHOOK_TOKEN: TOKEN }): Promise<Instance> {
  const { log, lines } = memoryLogger();
  const config = configFrom(yaml, env);
  const registry = createRegistry();
  const targets = createTargets(config, log);
  const remediation = await createRemediation(config, targets, registry, log, actions);
  const app = buildApp({ config, log, registry, targets, remediation });
  await app.server.listen({ host: '127.0.0.1', port: 0 });
  await remediation.startWorkers();
  const addr = app.server.addresses().find((a) => typeof a === 'object');
  const url = `http://127.0.0.1:${addr?.port}`;
  return {
    app,
    url,
    lines,
    async post(body, headers = { authorization: `Bearer ${TOKEN}` }) {
      const r = await fetch(`${url}/hooks/alertmanager`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await r.text();
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        json = { raw: text };
      }
      return { status: r.status, json };
    },
    close: () => app.close(),
  };
}

export interface TestAlert {
  status?: 'firing' | 'resolved';
  labels: Record<string, string>;
  startsAt?: string;
  fingerprint?: string;
}

/** An Alertmanager v4 notification, shaped as Alertmanager 0.25 sends it. */
export function notification(alerts: TestAlert[], groupStatus: 'firing' | 'resolved' = 'firing'): Record<string, unknown> {
  return {
    version: '4',
    groupKey: '{}:{alertname="TestAlert"}',
    truncatedAlerts: 0,
    status: groupStatus,
    receiver: 'housekeeper',
    groupLabels: { alertname: 'TestAlert' },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:9093',
    alerts: alerts.map((a) => ({
      status: a.status ?? 'firing',
      labels: a.labels,
      annotations: { summary: 'test' },
      startsAt: a.startsAt ?? '2026-11-28T10:00:00.000Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://127.0.0.1:9090/graph',
      fingerprint: a.fingerprint ?? fingerprintOf(a.labels),
    })),
  };
}

export function fingerprintOf(labels: Record<string, string>): string {
  let h = 0n;
  for (const [k, v] of Object.entries(labels).sort()) for (const ch of `${k}=${v};`) h = (h * 31n + BigInt(ch.charCodeAt(0))) % 2n ** 64n;
  return h.toString(16).padStart(16, '0');
}

/** The remediation tests' `until`: 30 s unless told, probing every 200 ms (see helpers/wait.ts). */
export function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  return waitUntil(what, fn, { timeoutMs, intervalMs: 200 });
}
