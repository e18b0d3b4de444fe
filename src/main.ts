import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { buildApp } from './app.ts';
import { createRegistry } from './metrics/registry.ts';
import { closeTargets, createTargets } from './targets/index.ts';
import type { Remediation } from './remediation/index.ts';

// Entry point: config, app, listen, graceful shutdown. A bad config (or rules file) exits 2
// with one line naming the file and field; nothing is started.

async function main(): Promise<void> {
  const path = process.env['HOUSEKEEPER_CONFIG'];
  if (!path) {
    process.stderr.write('housekeeper: set HOUSEKEEPER_CONFIG to the path of the config file (YAML)\n');
    process.exit(2);
  }
  let app;
  let remediation: Remediation | undefined;
  try {
    const config = loadConfig(path);
    const log = createLogger(config.logLevel);
    const registry = createRegistry();
    const targets = createTargets(config, log);
    try {
      // Loaded only when on: an exporter-only deployment never pays for the queue's modules.
      if (config.remediation.enabled) {
        const { createRemediation } = await import('./remediation/index.ts');
        const { actions } = await import('./actions/index.ts');
        remediation = await createRemediation(config, targets, registry, log, actions);
      }
    } catch (err) {
      await closeTargets(targets);
      throw err;
    }
    app = buildApp({ config, log, registry, targets, ...(remediation ? { remediation } : {}) });
    await app.server.listen({ host: config.server.host, port: config.server.port });
    await remediation?.startWorkers();
    log.info(
      { address: app.server.addresses(), postgres: config.postgres.length, pgbouncer: config.pgbouncer.length, redis: config.redis.length, remediation: config.remediation.enabled },
      'housekeeper listening',
    );
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`housekeeper: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = app.server.log;
  const running = app;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`housekeeper: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
