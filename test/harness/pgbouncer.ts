// A real PgBouncer in front of a harness primary, in the foreground as a child process
// (no -d, no pidfile: the pid we record is PgBouncer's own). Temp dir layout:
//
//   <dir>/pgbouncer.ini   config
//   <dir>/userlist.txt    auth_file, plain-text passwords (PgBouncer does SCRAM with clients
//                         and with the server from them)
//   <dir>/pgbouncer.log   its stderr (all its logging)
//   <dir>/logfile.log     with { logfile: true }: PgBouncer's own `logfile` too (it reopens it
//                         on RELOAD/SIGHUP, so tests can rotate it the way logrotate does)
//   <dir>/.s.PGSQL.<port> its Unix socket
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import type { PgServer } from './postgres.ts';
import { makeTempDir, serverOwner, waitFor, writeOwnedFile } from './proc.ts';
import { launchOnFreePort, ServerLifecycle, startOrDestroy } from './server.ts';

export interface PgBouncerServer {
  readonly port: number;
  readonly adminPassword: string;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  /** PgBouncer's own `logfile` setting, when started with { logfile: true }. */
  readonly logfile: string | undefined;
  /** PgBouncer's pid while it runs. */
  readonly pid: number | undefined;
  /** postgres://pgbouncer_admin:pw@127.0.0.1:port/pgbouncer: the admin console (admin_users and stats_users). */
  adminUrl(): string;
  /** A client connection through the pooler to the primary as user postgres; db default 'app'. */
  url(db?: string): string;
  start(): Promise<void>;
  /** Immediate shutdown (SIGTERM); waits until the process is gone. Idempotent. */
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

const ADMIN_USER = 'pgbouncer_admin';
const READY_TIMEOUT_MS = 30_000;

function bouncerBin(): string {
  return process.env['HOUSEKEEPER_PGBOUNCER_BIN'] ?? 'pgbouncer';
}

function quoteUserlist(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

class PgBouncerImpl extends ServerLifecycle implements PgBouncerServer {
  protected readonly kind = 'pgbouncer';
  port = 0;
  readonly adminPassword: string;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly logfile: string | undefined;
  private readonly primary: PgServer;
  private readonly poolSize: number;
  private readonly maxClientConn: number;

  constructor(primary: PgServer, dir: string, poolSize: number, maxClientConn: number, logfile: boolean) {
    super();
    this.primary = primary;
    this.dir = dir;
    this.configFile = path.join(dir, 'pgbouncer.ini');
    this.logFile = path.join(dir, 'pgbouncer.log');
    this.logfile = logfile ? path.join(dir, 'logfile.log') : undefined;
    this.adminPassword = randomBytes(18).toString('hex');
    this.poolSize = poolSize;
    this.maxClientConn = maxClientConn;
  }

  adminUrl(): string {
    return `postgres://${ADMIN_USER}:${this.adminPassword}@127.0.0.1:${this.port}/pgbouncer`;
  }

  url(db = 'app'): string {
    return `postgres://postgres:${encodeURIComponent(this.primary.superPassword)}@127.0.0.1:${this.port}/${encodeURIComponent(db)}`;
  }

  writeConfig(): void {
    const p = this.primary;
    const userlist = [
      ['postgres', p.superPassword],
      ['housekeeper', p.monitorPassword],
      [ADMIN_USER, this.adminPassword],
    ]
      .map(([u, pw]) => `${quoteUserlist(u!)} ${quoteUserlist(pw!)}`)
      .join('\n');
    writeOwnedFile(path.join(this.dir, 'userlist.txt'), userlist + '\n', serverOwner);
    const ini = `; written by test/harness/pgbouncer.ts
[databases]
app = host=127.0.0.1 port=${p.port} dbname=app
postgres = host=127.0.0.1 port=${p.port} dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${this.port}
unix_socket_dir = ${this.dir}
auth_type = scram-sha-256
auth_file = ${path.join(this.dir, 'userlist.txt')}
admin_users = ${ADMIN_USER}
stats_users = ${ADMIN_USER}
pool_mode = transaction
default_pool_size = ${this.poolSize}
max_client_conn = ${this.maxClientConn}
ignore_startup_parameters = extra_float_digits
; retry a failed server login after 1 s, not 15 s: tests restart the primary
server_login_retry = 1
syslog = 0
${this.logfile === undefined ? '' : `logfile = ${this.logfile}\n`}`;
    writeOwnedFile(this.configFile, ini, serverOwner);
  }

  async launch(): Promise<void> {
    await this.spawnUntilReady({
      name: `pgbouncer :${this.port}`,
      cmd: bouncerBin(),
      args: [this.configFile],
      logFile: this.logFile,
      asOwner: serverOwner, // refuses to run as root
      stopSignal: 'SIGTERM', // immediate shutdown in 1.18 (SIGINT would wait for clients)
      exitSignal: 'SIGTERM',
      cwd: this.dir,
    }, (proc) => waitFor(`pgbouncer on port ${this.port}`, proc, async () => {
      const c = new pg.Client({ connectionString: this.adminUrl(), connectionTimeoutMillis: 3000 });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query('SHOW VERSION');
        return true;
      } finally {
        await c.end().catch(() => {});
      }
    }, {
      timeoutMs: READY_TIMEOUT_MS,
      // PgBouncer does not exit when the TCP bind fails (its Unix socket still listens): it warns.
      failOnLog: /cannot listen on|FATAL/,
    }));
  }
}

export async function startPgBouncer(
  primary: PgServer,
  opts: { poolSize?: number; maxClientConn?: number; logfile?: boolean } = {},
): Promise<PgBouncerServer> {
  const dir = makeTempDir('hk-pgbouncer-', serverOwner);
  const b = new PgBouncerImpl(primary, dir, opts.poolSize ?? 5, opts.maxClientConn ?? 100, opts.logfile ?? false);
  return startOrDestroy(b, () => launchOnFreePort(b, async () => {
    b.writeConfig();
    await b.launch();
  }));
}
