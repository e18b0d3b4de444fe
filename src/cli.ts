import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger } from './log.ts';
import { buildApp, type App } from './app.ts';
import { Samples, evaluate, renderTable } from './check/checks.ts';
import { remediationChecks } from './check/remediation.ts';
import { ALERTS_USAGE, alertsCommand } from './alerts/command.ts';

// `housekeeper check [--json]`: the runbook's morning check in one command. One collection
// of every configured target, evaluated against the runbook's thresholds; exit 0 when all is
// green, 1 when anything warns or fails, 2 on a bad config.

const USAGE = `usage: housekeeper check [--json]   (config from HOUSEKEEPER_CONFIG)\n       housekeeper serve\n${ALERTS_USAGE.replace(/^usage: /, '       ')}`;

/** How long `check` waits for the background checks (FAISS, backup verification) to report. */
const BACKGROUND_WAIT_MS = 120_000;

/**
 * A collection in which the background checks have reported: they start on the first scrape
 * and never block one, so a one-shot command collects again until every FAISS index has a
 * finished check and every backup a verdict (bounded; what is still pending is reported so).
 */
async function settledCollection(app: App, config: Config): Promise<Samples> {
  const end = Date.now() + BACKGROUND_WAIT_MS;
  for (;;) {
    await app.runner.collect(config.server.scrapeTimeoutMs);
    const s = new Samples(await app.registry.getMetricsAsJSON());
    const faissDone =
      config.faiss.every((f) => s.one('faiss_index_check_timestamp_seconds', { target: f.name }) !== undefined) && s.sum('faiss_index_check_running') === 0;
    const backupsDone = s.all('backup_last_verified_timestamp_seconds').every((x) => x.value > 0);
    if ((faissDone && backupsDone) || Date.now() > end) return s;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function check(json: boolean): Promise<number> {
  const path = process.env['HOUSEKEEPER_CONFIG'];
  if (!path) throw new ConfigError('(unset)', '', 'set HOUSEKEEPER_CONFIG to the path of the config file');
  const config = loadConfig(path);
  const log = createLogger('silent');
  const app = buildApp({ config, log });
  try {
    const samples = await settledCollection(app, config);
    const results = [...evaluate(samples, config, Date.now() / 1000, app.runner.failures()), ...(await remediationChecks(config, log))];
    const bad = results.some((r) => r.status === 'fail' || r.status === 'warn');
    process.stdout.write(json ? `${JSON.stringify({ ok: !bad, checks: results }, null, 2)}\n` : `${renderTable(results)}\n`);
    return bad ? 1 : 0;
  } finally {
    await app.close();
  }
}

async function main(): Promise<void> {
  // `alerts` has options of its own; it needs no config.
  if (process.argv[2] === 'alerts') {
    process.exitCode = alertsCommand(
      process.argv.slice(3),
      (s) => process.stdout.write(s),
      (s) => process.stderr.write(s),
    );
    return;
  }
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  const cmd = positionals[0] ?? 'serve';
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (cmd === 'serve') {
    await import('./main.ts');
    return;
  }
  if (cmd !== 'check') {
    process.stderr.write(`housekeeper: unknown command "${cmd}"\n${USAGE}\n`);
    process.exit(2);
  }
  try {
    process.exit(await check(values.json === true));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`housekeeper: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

void main();
