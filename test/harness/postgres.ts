// Real PostgreSQL servers for tests: a primary from a cached template cluster, and
// streaming replicas from pg_basebackup. Each server lives in its own temp dir:
//
//   <dir>/data/            the cluster (postgresql.conf includes harness.conf, harness-local.conf)
//   <dir>/.s.PGSQL.<port>  its Unix socket (trust auth; the harness itself talks through it)
//   <dir>/postgres.log     the server's stderr (all its logging)
//
// TCP is 127.0.0.1 only, scram-sha-256 for everyone, replication included.
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import {
  ManagedProcess,
  cleanEnv,
  makeTempDir,
  runTool,
  serverOwner,
  cacheRoot,
  untrackTempDir,
  waitFor,
  writeOwnedFile,
  type ServerSpawnOptions,
} from './proc.ts';
import { launchOnFreePort, ServerLifecycle, startOrDestroy } from './server.ts';

export interface PgServer {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly superPassword: string;
  /** Password of the role 'housekeeper' (LOGIN, member of pg_monitor). */
  readonly monitorPassword: string;
  /** Directory of the server's Unix socket (trust auth), usable as pg's `host`. */
  readonly socketDir: string;
  readonly logFile: string;
  /** Pid of the postmaster while it runs. */
  readonly pid: number | undefined;
  /** postgres://user:password@127.0.0.1:port/db; default db 'postgres', default user 'postgres'. */
  url(opts?: { db?: string; user?: 'postgres' | 'housekeeper' }): string;
  /** (Re)starts after stop(): same port, same data. */
  start(): Promise<void>;
  /** Fast shutdown (SIGINT, as `pg_ctl stop -m fast`); waits until the postmaster is gone. Idempotent. */
  stop(): Promise<void>;
  /** stop() and remove the temp dir. */
  destroy(): Promise<void>;
}

// Bump when the template's content (below) changes: the cache key includes it.
const TEMPLATE_REV = 1;
const READY_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------
// Binaries

let pgBinCache: string | undefined;
function pgBin(): string {
  if (pgBinCache) return pgBinCache;
  const fromEnv = process.env['HOUSEKEEPER_PG_BIN'];
  if (fromEnv) return (pgBinCache = fromEnv);
  try {
    const versions = fs
      .readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = `/usr/lib/postgresql/${v}/bin`;
      if (fs.existsSync(`${dir}/postgres`)) return (pgBinCache = dir);
    }
  } catch {
    // not Debian's layout
  }
  try {
    return (pgBinCache = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    throw new Error('harness: PostgreSQL binaries not found (set HOUSEKEEPER_PG_BIN)');
  }
}

const bin = (name: string): string => path.join(pgBin(), name);

// ---------------------------------------------------------------------------------------
// Configuration

function confValue(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

const DEFAULT_SETTINGS: Readonly<Record<string, string>> = {
  listen_addresses: '127.0.0.1',
  shared_preload_libraries: 'pg_stat_statements',
  wal_level: 'replica',
  max_wal_senders: '10',
  max_replication_slots: '10',
  // The data may live on tmpfs (RAM): keep WAL bounded.
  wal_keep_size: '32MB',
  min_wal_size: '32MB',
  max_wal_size: '256MB',
  hot_standby: 'on',
  wal_retrieve_retry_interval: '1s',
  fsync: 'off',
  shared_buffers: '32MB',
  jit: 'off',
  timezone: 'UTC',
  log_timezone: 'UTC',
  log_line_prefix: '%m [%p] %q%u@%d ',
  logging_collector: 'off',
};

/** harness.conf: the harness defaults, then the test's settings (later entries win). */
function harnessConf(settings: Readonly<Record<string, string>>): string {
  const lines = ['# written by test/harness/postgres.ts'];
  for (const [k, v] of Object.entries({ ...DEFAULT_SETTINGS, ...settings })) lines.push(`${k} = ${confValue(v)}`);
  return lines.join('\n') + '\n';
}

/** harness-local.conf: what differs between a primary and its replicas. Included last. */
function localConf(port: number, socketDir: string, listen: boolean): string {
  return (
    [
      `port = ${port}`,
      `unix_socket_directories = ${confValue(socketDir)}`,
      ...(listen ? [] : [`listen_addresses = ''`]),
    ].join('\n') + '\n'
  );
}

const PG_HBA = `# written by test/harness/postgres.ts
local   all          all                  trust
local   replication  all                  trust
host    all          all  127.0.0.1/32    scram-sha-256
host    replication  all  127.0.0.1/32    scram-sha-256
`;

function writeConf(dataDir: string, settings: Readonly<Record<string, string>>, port: number, socketDir: string, listen = true): void {
  writeOwnedFile(path.join(dataDir, 'harness.conf'), harnessConf(settings), serverOwner);
  writeOwnedFile(path.join(dataDir, 'harness-local.conf'), localConf(port, socketDir, listen), serverOwner);
}

// ---------------------------------------------------------------------------------------
// Talking to a server through its Unix socket (trust auth)

async function withSocketClient<T>(
  socketDir: string,
  port: number,
  db: string,
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  const c = new pg.Client({ host: socketDir, port, user: 'postgres', database: db, connectionTimeoutMillis: 5000 });
  c.on('error', () => {}); // a server going away must not crash the test process
  try {
    await c.connect();
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

function postgresSpawn(name: string, dataDir: string, logFile: string): ServerSpawnOptions {
  return {
    name,
    cmd: bin('postgres'),
    args: ['-D', dataDir],
    logFile,
    asOwner: serverOwner,
    stopSignal: 'SIGINT', // fast shutdown, what `pg_ctl stop -m fast` sends
    exitSignal: 'SIGQUIT', // immediate shutdown, for the exit hook
    cwd: dataDir,
  };
}

// ---------------------------------------------------------------------------------------
// Template cluster: initdb once per PG version (and uid), cached under os.tmpdir().

let templatePromise: Promise<string> | undefined;

function pgVersion(): string {
  return execFileSync(bin('postgres'), ['--version'], { encoding: 'utf8' }).trim();
}

/** Path of the template's parent dir (containing data/), building it if needed. */
function templateDir(): Promise<string> {
  templatePromise ??= buildTemplate().catch((err: unknown) => {
    templatePromise = undefined;
    throw err;
  });
  return templatePromise;
}

async function buildTemplate(): Promise<string> {
  const uid = process.getuid?.() ?? 0;
  const root = cacheRoot();
  const key = createHash('sha256')
    .update(`${pgVersion()}|${pgBin()}|${TEMPLATE_REV}|${serverOwner?.uid ?? uid}|${harnessConf({})}|${PG_HBA}`)
    .digest('hex')
    .slice(0, 16);
  const final = path.join(root, `pg-template-${key}`);
  // The template only ever appears by an atomic rename of a complete build.
  if (fs.existsSync(path.join(final, 'data', 'PG_VERSION'))) return final;

  // Build in a private staging dir; parallel processes may each build one, the first rename wins.
  const staging = makeTempDir(`pg-template-${key}.tmp-`, serverOwner, root);
  const dataDir = path.join(staging, 'data');
  const logFile = path.join(staging, 'postgres.log');
  let proc: ManagedProcess | undefined;
  try {
    await runTool(
      bin('initdb'),
      ['-D', dataDir, '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync', '--no-instructions'],
      { asOwner: serverOwner, timeoutMs: 120_000 },
    );
    writeOwnedFile(path.join(dataDir, 'pg_hba.conf'), PG_HBA, serverOwner);
    fs.appendFileSync(
      path.join(dataDir, 'postgresql.conf'),
      `\n# test/harness/postgres.ts\ninclude 'harness.conf'\ninclude 'harness-local.conf'\n`,
    );
    // No TCP for the build: nothing to race for, the socket is in our private dir.
    writeConf(dataDir, {}, 5432, staging, false);
    proc = new ManagedProcess(postgresSpawn('postgres (template)', dataDir, logFile));
    const p = proc;
    await waitFor('postgres template', p, () => withSocketClient(staging, 5432, 'postgres', async () => true), {
      timeoutMs: READY_TIMEOUT_MS,
    });
    await withSocketClient(staging, 5432, 'postgres', async (c) => {
      await c.query('CREATE EXTENSION pg_stat_statements');
      await c.query('CREATE ROLE housekeeper LOGIN IN ROLE pg_monitor');
      await c.query('CREATE DATABASE app OWNER postgres');
    });
    await proc.stop(60_000);
    fs.rmSync(logFile, { force: true });
    fs.rmSync(path.join(staging, '.harness-owner'), { force: true });
    try {
      fs.renameSync(staging, final);
      untrackTempDir(staging);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      fs.rmSync(staging, { recursive: true, force: true }); // another process won the race
      untrackTempDir(staging);
    }
    return final;
  } catch (err) {
    await proc?.stop().catch(() => {});
    fs.rmSync(staging, { recursive: true, force: true });
    untrackTempDir(staging);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------
// Servers

function randomPassword(): string {
  return randomBytes(18).toString('hex');
}

class PgServerImpl extends ServerLifecycle implements PgServer {
  readonly host = '127.0.0.1';
  port: number;
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly superPassword: string;
  readonly monitorPassword: string;
  readonly settings: Readonly<Record<string, string>>;
  readonly kind: 'primary' | 'replica';
  // stop() is a fast shutdown, which writes a shutdown checkpoint: it gets 60 s, not 30.
  protected override readonly stopTimeoutMs = 60_000;

  constructor(o: {
    dir: string;
    superPassword: string;
    monitorPassword: string;
    settings: Readonly<Record<string, string>>;
    kind: 'primary' | 'replica';
  }) {
    super();
    this.dir = o.dir;
    this.dataDir = path.join(o.dir, 'data');
    this.socketDir = o.dir;
    this.logFile = path.join(o.dir, 'postgres.log');
    this.superPassword = o.superPassword;
    this.monitorPassword = o.monitorPassword;
    this.settings = o.settings;
    this.kind = o.kind;
    this.port = 0;
  }

  protected override get label(): string {
    return `postgres ${this.kind}`;
  }

  url(opts: { db?: string; user?: 'postgres' | 'housekeeper' } = {}): string {
    const user = opts.user ?? 'postgres';
    const pw = user === 'postgres' ? this.superPassword : this.monitorPassword;
    return `postgres://${user}:${encodeURIComponent(pw)}@${this.host}:${this.port}/${encodeURIComponent(opts.db ?? 'postgres')}`;
  }

  /** Starts the postmaster and waits until it accepts connections (and, for a replica, is in recovery). */
  async launch(): Promise<void> {
    await this.spawnUntilReady(postgresSpawn(`postgres ${this.kind} :${this.port}`, this.dataDir, this.logFile), (proc) =>
      waitFor(`postgres ${this.kind} on port ${this.port}`, proc, async () => {
        const inRecovery = await withSocketClient(this.socketDir, this.port, 'postgres', async (c) => {
          const r = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
          return r.rows[0]?.r;
        });
        if (this.kind === 'replica' && inRecovery !== true) throw new Error('not in recovery (yet?)');
        return true;
      }, { timeoutMs: READY_TIMEOUT_MS }),
    );
  }

  /** Runs statements as postgres through the Unix socket. */
  async sql(statements: readonly string[], db = 'postgres'): Promise<void> {
    await withSocketClient(this.socketDir, this.port, db, async (c) => {
      for (const s of statements) await c.query(s);
    });
  }
}

/** Writes the config for a free port and launches, with a new port after a bind failure. */
function launchOnTcp(server: PgServerImpl): Promise<void> {
  return launchOnFreePort(server, async () => {
    writeConf(server.dataDir, server.settings, server.port, server.socketDir);
    await server.launch();
  });
}

/** Starts a primary: a copy of the cached template with fresh passwords on a free port. */
export async function startPostgres(opts: { settings?: Record<string, string> } = {}): Promise<PgServer> {
  const tpl = await templateDir();
  const dir = makeTempDir('hk-pg-', serverOwner);
  const server = new PgServerImpl({
    dir,
    superPassword: randomPassword(),
    monitorPassword: randomPassword(),
    settings: { ...(opts.settings ?? {}) },
    kind: 'primary',
  });
  return startOrDestroy(server, async () => {
    await runTool('cp', ['-a', '--reflink=auto', path.join(tpl, 'data'), server.dataDir], { asOwner: serverOwner });
    await launchOnTcp(server);
    await server.sql([
      `ALTER ROLE postgres PASSWORD '${server.superPassword}'`,
      `ALTER ROLE housekeeper PASSWORD '${server.monitorPassword}'`,
    ]);
  });
}

/**
 * Starts a streaming replica of `primary`: pg_basebackup -R -X stream over TCP (scram), its
 * own temp dir and port, same passwords (they are in the copied catalog). Resolves once it
 * accepts connections and pg_is_in_recovery() is true.
 */
export async function startReplica(primary: PgServer): Promise<PgServer> {
  if (!(primary instanceof PgServerImpl)) throw new Error('startReplica: primary must come from startPostgres()');
  const dir = makeTempDir('hk-pg-replica-', serverOwner);
  const server = new PgServerImpl({
    dir,
    superPassword: primary.superPassword,
    monitorPassword: primary.monitorPassword,
    settings: primary.settings,
    kind: 'replica',
  });
  return startOrDestroy(server, async () => {
    await runTool(
      bin('pg_basebackup'),
      [
        '-D', server.dataDir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync', '--no-manifest',
        '-d', `host=127.0.0.1 port=${primary.port} user=postgres application_name=${path.basename(dir)}`,
      ],
      { asOwner: serverOwner, env: cleanEnv({ PGPASSWORD: primary.superPassword, PGCONNECT_TIMEOUT: '10' }), timeoutMs: 120_000 },
    );
    await launchOnTcp(server);
  });
}
