import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runArgv } from '../util/run-argv.ts';

// Running the PostgreSQL client programs (pg_dump, pg_restore) for the backup actions:
// which binary, how to connect without putting the password on the command line, and
// their version for the manifest. Commands are argv arrays; nothing goes through a shell.

/**
 * A PostgreSQL client program: $HOUSEKEEPER_PG_BIN/<tool>, else the newest Debian
 * /usr/lib/postgresql/N/bin/<tool> (an archive needs a pg_restore at least as new as the
 * pg_dump that wrote it, and pg_dump must be at least as new as the server), else <tool>
 * from PATH. The same search as findPgRestore in verify.ts.
 */
export function findPgTool(tool: 'pg_dump' | 'pg_restore', env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['HOUSEKEEPER_PG_BIN'];
  if (fromEnv) return join(fromEnv, tool);
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const p = `/usr/lib/postgresql/${v}/bin/${tool}`;
      if (existsSync(p)) return p;
    }
  } catch {
    // not Debian's layout
  }
  return tool;
}

/** How a client program connects: a connection URI without the password, and the password apart. */
export interface LibpqConnection {
  /** For `--dbname=`: the target's URL with the password (and any password= parameter) removed. */
  conninfo: string;
  /** The password, for a temporary pgpass file; never on a command line, never logged. */
  password: string | undefined;
  /** The database name the URL names (libpq's default: the user name). */
  database: string;
}

/**
 * Splits a postgres:// URL (as config holds it) into what libpq needs apart from the
 * password. `database` replaces the URL's database (restore-test's scratch database).
 * node-postgres's `ssl=true|false` parameter, which libpq does not know, becomes sslmode.
 */
export function libpqConnection(url: string, database?: string): LibpqConnection {
  const u = new URL(url);
  let password = u.password === '' ? undefined : decodeURIComponent(u.password);
  const fromParam = u.searchParams.get('password');
  if (fromParam !== null) {
    password ??= fromParam;
    u.searchParams.delete('password');
  }
  u.password = '';
  const ssl = u.searchParams.get('ssl');
  if (ssl !== null) {
    u.searchParams.delete('ssl');
    if (!u.searchParams.has('sslmode')) u.searchParams.set('sslmode', ssl === 'false' || ssl === '0' ? 'disable' : 'verify-full');
  }
  // A passfile named in the URL would be read instead of ours.
  if (password !== undefined) u.searchParams.delete('passfile');
  if (database !== undefined) u.pathname = `/${encodeURIComponent(database)}`;
  const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres';
  return { conninfo: u.toString(), password, database: db };
}

/** A pgpass line matching any host, port, database and user: the file serves one run only. */
function pgpassLine(password: string): string {
  return `*:*:*:*:${password.replace(/\\/g, '\\\\').replace(/:/g, '\\:')}\n`;
}

/**
 * Runs fn with the environment a client program gets: PATH, LC_ALL=C, a connect timeout,
 * and PGPASSFILE naming a pgpass file (mode 0600, in a private 0700 temp directory) that
 * holds the password; the file is removed afterwards, whatever happens. No other PG*
 * variable of the service's environment reaches the program.
 */
export async function withPgEnv<R>(password: string | undefined, fn: (env: Record<string, string>) => Promise<R>): Promise<R> {
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C', PGCONNECT_TIMEOUT: '30' };
  if (password === undefined) return fn(env);
  if (/[\r\n]/.test(password)) throw new Error('the password contains a line break, which a pgpass file cannot hold');
  const dir = await mkdtemp(join(tmpdir(), 'hk-pgpass-'));
  try {
    const file = join(dir, 'pgpass');
    await writeFile(file, pgpassLine(password), { mode: 0o600, flag: 'wx' });
    return await fn({ ...env, PGPASSFILE: file });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `<tool> --version` → "15.14" (the first version number in its answer), for manifests. */
export async function toolVersion(bin: string, signal?: AbortSignal): Promise<string> {
  signal?.throwIfAborted();
  const exit = await runArgv([bin, '--version'], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' },
    cwd: undefined,
    timeoutMs: 10_000,
    ...(signal ? { signal } : {}),
  });
  if (exit.code !== 0) throw new Error(`${bin} --version exited ${exit.code ?? exit.signal}`);
  const m = /\d+(?:\.\d+)+|\d+/.exec(exit.output);
  return m ? m[0] : 'unknown';
}

/**
 * The lines of a client program's output worth showing: its own error and warning lines,
 * each cut short. Lines such as "Command was: …" and CONTEXT (which can quote row data) are
 * left out.
 */
export function toolErrors(output: string, tool: string, max = 5): string {
  const lines = output
    .split('\n')
    .filter((l) => l.startsWith(`${tool}: error:`) || l.startsWith(`${tool}: warning:`) || l.startsWith('[housekeeper:'))
    .map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l));
  return lines.slice(-max).join(' | ') || `no ${tool} error message`;
}
