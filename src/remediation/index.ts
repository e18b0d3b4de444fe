import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { ConfigError, type Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { AnyAction } from '../actions/action.ts';
import { MetricFactory } from '../metrics/registry.ts';
import type { Targets } from '../targets/index.ts';
import { registerApi } from './api.ts';
import { webhookUnprotected } from './auth.ts';
import { Engine } from './engine.ts';
import { createAnnotator } from './grafana.ts';
import { declareRemediationMetrics } from './metrics.ts';
import { loadRules, type Rule } from './rules.ts';
import { openState, type StateDb } from './state.ts';
import { registerWebhook } from './webhook.ts';

/** The acting half of housekeeper: rules, state, engine, webhook and log API. */
export interface Remediation {
  engine: Engine;
  state: StateDb;
  rules: readonly Rule[];
  register(server: FastifyInstance): void;
  startWorkers(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Checks everything that can be checked without I/O first (credentials, rules), so a bad
 * config stops the boot before any database is touched; then opens state and the queue.
 */
export async function createRemediation(
  config: Config,
  targets: Targets,
  registry: Registry,
  log: Logger,
  actions: readonly AnyAction[],
): Promise<Remediation> {
  if (webhookUnprotected(config)) {
    throw new ConfigError(
      config.file,
      'webhook',
      'no credentials for the webhook: set HOUSEKEEPER_WEBHOOK_TOKEN, webhook.token_file or webhook.basic_auth, or say webhook.allow_unauthenticated: true',
    );
  }
  const rules = loadRules(config.remediation.rulesDir, actions);
  const metrics = declareRemediationMetrics(new MetricFactory(registry, false));
  const state = await openState(config, log);
  const engine = new Engine({
    config,
    state,
    rules,
    ctx: { targets, config, log },
    log,
    metrics,
    annotator: createAnnotator(config, log),
  });
  try {
    await engine.start();
  } catch (err) {
    await state.close();
    throw err;
  }
  log.info({ rules: rules.length, state: state.kind, dryRun: config.remediation.dryRun }, 'remediation ready');
  return {
    engine,
    state,
    rules,
    register(server) {
      registerWebhook(server, config, engine, metrics);
      registerApi(server, config, state);
    },
    startWorkers: () => engine.startWorkers(),
    async stop() {
      await engine.stop();
      await state.close();
    },
  };
}
