import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { buildApp } from './app.ts';

// Entry point: config, app, listen, graceful shutdown. A bad config exits 2 with one line
// naming the file and field; nothing is started.

async function main(): Promise<void> {
  const path = process.env['HOUSEKEEPER_CONFIG'];
  if (!path) {
    process.stderr.write('housekeeper: set HOUSEKEEPER_CONFIG to the path of the config file (YAML)\n');
    process.exit(2);
  }
  let config;
  let app;
  try {
    config = loadConfig(path);
    const log = createLogger(config.logLevel);
    app = buildApp({ config, log });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`housekeeper: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = app.server.log;
  await app.server.listen({ host: config.server.host, port: config.server.port });
  log.info(
    { address: app.server.addresses(), postgres: config.postgres.length, pgbouncer: config.pgbouncer.length, redis: config.redis.length },
    'housekeeper listening',
  );

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    app.close().then(
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
