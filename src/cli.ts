import { parseArgs } from 'node:util';
import { parseDuration } from './util/duration.ts';
import { version } from './version.ts';

// The housekeeper command. `check` is the runbook's morning check in one command: exit 0 when
// all is green, 1 when anything warns or fails, 2 on a bad config or a bad command line.
// Every error path prints one line (plus the usage for a bad command line), never a stack.
// Modules load when their command runs, so --version and --help answer without loading them.

async function usage(): Promise<string> {
  const { ALERTS_USAGE } = await import('./alerts/command.ts');
  return [
    'usage: housekeeper check [--json] [--wait DURATION]   (config from HOUSEKEEPER_CONFIG; --wait default 5s)',
    '       housekeeper serve',
    ALERTS_USAGE.replace(/^usage: /, '       '),
    '       housekeeper --version | --help',
  ].join('\n');
}

/** How long `check` waits, by default, for background checks and the state database. */
const DEFAULT_WAIT = '5s';

class UsageError extends Error {}

/** parseArgs's messages run long (advice on `--`); one line, the option named. */
function usageProblem(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = String(e.message ?? err).split('\n')[0] ?? '';
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${/'([^']+)'/.exec(message)?.[1] ?? message}`;
  return message.replace(/\.? To specify a positional argument.*$/, '');
}

async function main(argv: string[]): Promise<number> {
  // `alerts` has options of its own and needs no config.
  if (argv[0] === 'alerts') {
    const { alertsCommand } = await import('./alerts/command.ts');
    return alertsCommand(
      argv.slice(1),
      (s) => process.stdout.write(s),
      (s) => process.stderr.write(s),
    );
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        wait: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (err) {
    throw new UsageError(usageProblem(err));
  }
  const { positionals, values } = parsed;
  if (values.version) {
    process.stdout.write(`housekeeper ${version()}\n`);
    return 0;
  }
  if (values.help) {
    process.stdout.write(`${await usage()}\n`);
    return 0;
  }
  const [cmd = 'serve', ...extra] = positionals;
  if (cmd !== 'serve' && cmd !== 'check') throw new UsageError(`unknown command "${cmd}"`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (cmd === 'serve') {
    if (values.json || values.wait !== undefined) throw new UsageError(`--${values.json ? 'json' : 'wait'} is an option of check`);
    // main.ts reports its own errors (one line, exit 2 for a bad config) and keeps running.
    await import('./main.ts');
    return -1;
  }
  let waitMs: number;
  try {
    waitMs = parseDuration(values.wait ?? DEFAULT_WAIT);
  } catch (err) {
    throw new UsageError(`--wait: ${(err as Error).message}`);
  }
  const { ConfigError, loadConfig } = await import('./config.ts');
  const { runCheck } = await import('./check/run.ts');
  try {
    const path = process.env['HOUSEKEEPER_CONFIG'];
    if (!path) throw new ConfigError('(unset)', '', 'set HOUSEKEEPER_CONFIG to the path of the config file');
    const config = loadConfig(path);
    return await runCheck(config, { json: values.json === true, waitMs }, (s) => process.stdout.write(s));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`housekeeper: ${err.message}\n`);
    return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // -1: the service runs on. Otherwise exit now: pools and timers would keep a one-shot alive.
    if (code >= 0) process.exit(code);
  },
  async (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`housekeeper: ${err.message}\n${await usage()}\n`);
      process.exit(2);
    }
    // Config passwords are registered secrets by now; an unexpected error may quote one.
    const { scrubText } = await import('./log.ts');
    process.stderr.write(`housekeeper: ${scrubText(err instanceof Error ? err.message : String(err))}\n`);
    process.exit(1);
  },
);
