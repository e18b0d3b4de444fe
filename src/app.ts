import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyError } from 'fastify';
import type { Registry } from 'prom-client';
import { ConfigError, type Config } from './config.ts';
import type { Logger } from './log.ts';
import { scrub } from './log.ts';
import { collectors as allCollectors } from './collectors/index.ts';
import type { AnyCollector } from './collectors/collector.ts';
import { CollectorRunner } from './collectors/runner.ts';
import {
  MetricFactory,
  createRegistry,
  OPENMETRICS_CONTENT_TYPE,
  renderOpenMetrics,
  renderSelected,
  renderText,
  TEXT_CONTENT_TYPE,
  wantsOpenMetrics,
} from './metrics/registry.ts';
import { closeTargets, createTargets, type Targets } from './targets/index.ts';
import type { Remediation } from './remediation/index.ts';
import type { Gauge, Metric } from 'prom-client';
import { version } from './version.ts';

export interface AppDeps {
  config: Config;
  log: Logger;
  /** Defaults to the built-in list; tests pass their own to exercise the runner. */
  collectors?: readonly AnyCollector[];
  targets?: Targets;
  /** The webhook, engine and log API; absent in an exporter-only deployment. */
  remediation?: Remediation;
}

export interface App {
  server: FastifyInstance;
  runner: CollectorRunner;
  registry: Registry;
  targets: Targets;
  remediation: Remediation | undefined;
  /** Stops accepting work, then closes every client. */
  close(): Promise<void>;
}


/** Families of the service itself, beyond the runner's. */
export function declareServiceMetrics(f: MetricFactory): { build: Gauge<string> } {
  return { build: f.gauge('housekeeper_build_info', 'Version of housekeeper and of the Node.js running it (value 1).', ['version', 'nodejs']) };
}

/** The scrape deadline: Prometheus's own timeout less an offset, else the configured default. */
export function scrapeDeadlineMs(header: string | string[] | undefined, config: Config): number {
  const raw = Array.isArray(header) ? header[0] : header;
  const seconds = raw === undefined ? Number.NaN : Number.parseFloat(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) return config.server.scrapeTimeoutMs;
  return Math.max(100, seconds * 1000 - config.server.scrapeTimeoutOffsetMs);
}

/** Collector names in config must be known ones; a typo would silently change what is collected. */
export function checkCollectorNames(config: Config, collectors: readonly AnyCollector[]): void {
  const known = collectors.map((c) => c.name);
  for (const key of ['enabled', 'disabled'] as const) {
    config.collectors[key].forEach((name, i) => {
      if (!known.includes(name)) {
        throw new ConfigError(config.file, `collectors.${key}[${i}]`, `unknown collector "${name}" (known: ${known.join(', ')})`);
      }
    });
  }
}

export function buildApp(deps: AppDeps & { registry?: Registry }): App {
  const { config, log } = deps;
  checkCollectorNames(config, deps.collectors ?? allCollectors);
  const registry = deps.registry ?? createRegistry();
  declareServiceMetrics(new MetricFactory(registry, false)).build.set({ version: version(), nodejs: process.versions.node }, 1);

  const targets = deps.targets ?? createTargets(config, log);
  const runner = new CollectorRunner(deps.collectors ?? allCollectors, targets, config, registry, log);
  let closing = false;

  const server = Fastify({ loggerInstance: log as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), bodyLimit: 1024 * 1024 });

  server.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err, url: req.url }, 'request failed');
    void reply.status(status).send({ error: scrub(err.message) });
  });

  // Scrapes that shared a collection share its rendering too: one render per collection,
  // format and target (for /probe), not one per scraper.
  const rendered = new Map<string, { generation: number; text: Promise<Buffer> }>();
  const render = (key: string, produce: () => Promise<Buffer>): Promise<Buffer> => {
    let cached = rendered.get(key);
    if (cached?.generation !== runner.completed) {
      cached = { generation: runner.completed, text: produce() };
      rendered.set(key, cached);
    }
    return cached.text;
  };

  server.get('/metrics', async (req, reply) => {
    const om = wantsOpenMetrics(req.headers.accept);
    const type = om ? OPENMETRICS_CONTENT_TYPE : TEXT_CONTENT_TYPE;
    // `collect=none`: the service's own metrics only, without collecting any target, for a
    // Prometheus that scrapes the targets through /probe (a second full collection per
    // scrape would double the load on every database).
    if ((req.query as Record<string, unknown>)['collect'] === 'none') {
      const skip = runner.targetFamilies();
      const own = registry.getMetricsAsArray().filter((m) => !skip.has(m.name)) as unknown as Metric[];
      return reply.type(type).send(await renderSelected(own, om));
    }
    await runner.collect(scrapeDeadlineMs(req.headers['x-prometheus-scrape-timeout-seconds'], config));
    const text = await render(`metrics ${om}`, () => (om ? renderOpenMetrics(registry) : renderText(registry)));
    return reply.type(type).send(text);
  });

  // The multi-target convention (blackbox_exporter, snmp_exporter, postgres_exporter): one
  // target's series only, so Prometheus can give each target its own `instance`. The
  // service's own process metrics stay on /metrics.
  server.get('/probe', async (req, reply) => {
    const target = (req.query as Record<string, unknown>)['target'];
    if (typeof target !== 'string' || target === '') {
      return reply.status(400).send({ error: 'give exactly one target: /probe?target=NAME' });
    }
    const families = runner.probeFamilies(target);
    if (families === undefined) {
      // Target names are labels on every series anyway; nothing secret is listed.
      return reply.status(400).send({ error: `unknown target ${JSON.stringify(target.slice(0, 100))} (configured: ${runner.targetNames().join(', ')})` });
    }
    await runner.collectTarget(target, scrapeDeadlineMs(req.headers['x-prometheus-scrape-timeout-seconds'], config));
    const om = wantsOpenMetrics(req.headers.accept);
    const metrics = families.flatMap((name) => registry.getSingleMetric(name) ?? []) as unknown as Metric[];
    const text = await render(`probe ${om} ${target}`, () => renderSelected(metrics, om, (labels) => labels['target'] === target));
    return reply.type(om ? OPENMETRICS_CONTENT_TYPE : TEXT_CONTENT_TYPE).send(text);
  });

  // Liveness: the process answers. Readiness: it has booted and is not shutting down. Neither
  // depends on the monitored targets: a database being down is what we report, not our fault.
  server.get('/healthz', async () => ({ status: 'ok' }));
  server.get('/readyz', async (_req, reply) => {
    if (closing) return reply.status(503).send({ status: 'shutting down' });
    return { status: 'ready' };
  });

  deps.remediation?.register(server);

  return {
    server,
    runner,
    registry,
    targets,
    remediation: deps.remediation,
    async close() {
      closing = true;
      await server.close();
      await deps.remediation?.stop();
      await runner.close();
      await closeTargets(targets);
    },
  };
}
