// A real redis-server for tests, in the foreground as a child process. Temp dir layout:
//
//   <dir>/redis.conf   config (requirepass, bind 127.0.0.1, save "" unless persistence)
//   <dir>/redis.log    its log
//   <dir>/dump.rdb     only with { persistence: true }
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { makeTempDir, waitFor, writeOwnedFile } from './proc.ts';
import { launchOnFreePort, ServerLifecycle, startOrDestroy } from './server.ts';

export interface RedisServer {
  readonly port: number;
  readonly password: string;
  readonly dir: string;
  readonly logFile: string;
  /** redis-server's pid while it runs. */
  readonly pid: number | undefined;
  /** redis://:password@127.0.0.1:port/db (db default 0). */
  url(db?: number): string;
  /** (Re)starts after stop(): same port, same dir (data is gone unless persistence). */
  start(): Promise<void>;
  /** SIGTERM (shutdown); waits until the process is gone. Idempotent. */
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

export interface RedisOptions {
  maxmemory?: string;
  maxmemoryPolicy?: string;
  /** Save an RDB on shutdown and load it on start, so data survives stop()/start(). Default false. */
  persistence?: boolean;
}

const READY_TIMEOUT_MS = 30_000;

/** AUTH + PING over a raw socket: resolves true on +PONG, rejects otherwise. */
function authPing(port: number, password: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (err?: Error): void => {
      sock.destroy();
      if (err) reject(err);
      else resolve(true);
    };
    sock.setTimeout(3000, () => done(new Error('timeout')));
    sock.once('error', (e) => done(e));
    sock.once('connect', () => {
      sock.write(`*2\r\n$4\r\nAUTH\r\n$${Buffer.byteLength(password)}\r\n${password}\r\n*1\r\n$4\r\nPING\r\n`);
    });
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\r\n');
      if (lines.length < 3) return;
      if (lines[0] === '+OK' && lines[1] === '+PONG') done();
      else done(new Error(`redis answered ${JSON.stringify(lines.slice(0, 2))}`));
    });
    sock.once('end', () => done(new Error('connection closed')));
  });
}

class RedisImpl extends ServerLifecycle implements RedisServer {
  protected readonly kind = 'redis';
  port = 0;
  readonly password: string;
  readonly dir: string;
  readonly logFile: string;
  readonly configFile: string;
  private readonly opts: RedisOptions;

  constructor(dir: string, opts: RedisOptions) {
    super();
    this.dir = dir;
    this.opts = opts;
    this.password = randomBytes(18).toString('hex');
    this.logFile = path.join(dir, 'redis.log');
    this.configFile = path.join(dir, 'redis.conf');
  }

  url(db = 0): string {
    return `redis://:${this.password}@127.0.0.1:${this.port}/${db}`;
  }

  writeConfig(): void {
    const lines = [
      '# written by test/harness/redis.ts',
      'bind 127.0.0.1',
      `port ${this.port}`,
      'protected-mode yes',
      `requirepass ${this.password}`,
      'daemonize no',
      'supervised no',
      `dir ${this.dir}`,
      `logfile ${this.logFile}`,
      'loglevel notice',
      this.opts.persistence ? 'save 3600 1' : 'save ""',
      'appendonly no',
      'databases 16',
    ];
    if (this.opts.maxmemory) lines.push(`maxmemory ${this.opts.maxmemory}`);
    if (this.opts.maxmemoryPolicy) lines.push(`maxmemory-policy ${this.opts.maxmemoryPolicy}`);
    writeOwnedFile(this.configFile, lines.join('\n') + '\n', undefined);
  }

  async launch(): Promise<void> {
    await this.spawnUntilReady({
      name: `redis-server :${this.port}`,
      cmd: process.env['HOUSEKEEPER_REDIS_BIN'] ?? 'redis-server',
      args: [this.configFile],
      logFile: this.logFile, // also its logfile: early errors (before it opens it) land here too
      asOwner: undefined,
      stopSignal: 'SIGTERM',
      exitSignal: 'SIGTERM',
      cwd: this.dir,
    }, (proc) => waitFor(`redis on port ${this.port}`, proc, () => authPing(this.port, this.password), {
      timeoutMs: READY_TIMEOUT_MS,
    }));
  }
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const r = new RedisImpl(makeTempDir('hk-redis-', undefined), { ...opts });
  return startOrDestroy(r, () => launchOnFreePort(r, async () => {
    r.writeConfig();
    await r.launch();
  }));
}
