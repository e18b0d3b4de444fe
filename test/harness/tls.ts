// Certificates made in the test with the openssl CLI (argv, no shell), with exact validity dates,
// and real TLS servers on loopback that present them.
//
// `openssl ca` is used rather than `openssl req -x509 -days`, because it takes explicit
// -startdate/-enddate: a test can make an already-expired certificate and assert the exact
// not-after it gave. Serial numbers are chosen by the test too.
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Cert {
  cn: string;
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
  /** Seconds since epoch, exactly as written into the certificate. */
  notBefore: number;
  notAfter: number;
  /** The serial, in decimal (ssl_exporter's label form). */
  serial: string;
}

export interface IssueOptions {
  cn: string;
  /** Validity, seconds since epoch (whole seconds). */
  notBefore: number;
  notAfter: number;
  serial: bigint;
  /** subjectAltName entries, e.g. ["DNS:localhost", "IP:127.0.0.1"]. */
  san?: string[];
  ou?: string;
  ca?: boolean;
}

/** 20260102030405Z: openssl ca's -startdate/-enddate (GeneralizedTime). */
function asn1(seconds: number): string {
  return `${new Date(seconds * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

/** A directory where certificates are made; `close()` removes it. */
export class CertFactory {
  readonly dir: string;
  private n = 0;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(): Promise<CertFactory> {
    const dir = await mkdtemp(join(tmpdir(), 'hk-tls-'));
    await mkdir(join(dir, 'newcerts'));
    await writeFile(join(dir, 'index.txt'), '');
    await writeFile(
      join(dir, 'ca.cnf'),
      [
        '[ ca ]',
        'default_ca = local',
        '[ local ]',
        `dir = ${dir}`,
        'database = $dir/index.txt',
        'new_certs_dir = $dir/newcerts',
        'serial = $dir/serial',
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        'email_in_dn = no',
        'copy_extensions = none',
        '[ any ]',
        'commonName = supplied',
        'organizationalUnitName = optional',
        '',
      ].join('\n'),
    );
    return new CertFactory(dir);
  }

  /** Issues a certificate signed by `issuer`, or self-signed when issuer is undefined. */
  async issue(o: IssueOptions, issuer?: Cert): Promise<Cert> {
    const id = `c${++this.n}`;
    const keyFile = join(this.dir, `${id}.key`);
    const csrFile = join(this.dir, `${id}.csr`);
    const certFile = join(this.dir, `${id}.crt`);
    const extFile = join(this.dir, `${id}.ext`);
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
    const subj = `/CN=${o.cn}${o.ou ? `/OU=${o.ou}` : ''}`;
    await run('openssl', ['req', '-new', '-key', keyFile, '-subj', subj, '-out', csrFile]);
    const ext = o.ca
      ? ['basicConstraints = critical, CA:true', 'keyUsage = critical, keyCertSign, cRLSign', 'subjectKeyIdentifier = hash']
      : ['basicConstraints = critical, CA:false', 'keyUsage = critical, digitalSignature', 'extendedKeyUsage = serverAuth', 'subjectKeyIdentifier = hash'];
    if (o.san && o.san.length > 0) ext.push(`subjectAltName = ${o.san.join(', ')}`);
    if (issuer) ext.push('authorityKeyIdentifier = keyid');
    await writeFile(extFile, `[ ext ]\n${ext.join('\n')}\n`);
    await writeFile(join(this.dir, 'serial'), `${o.serial.toString(16).toUpperCase().padStart(2, '0')}\n`);
    const signer = issuer ? ['-cert', issuer.certFile, '-keyfile', issuer.keyFile] : ['-selfsign', '-keyfile', keyFile];
    await run('openssl', [
      'ca', '-batch', '-notext', '-config', join(this.dir, 'ca.cnf'),
      ...signer,
      '-in', csrFile, '-out', certFile,
      '-startdate', asn1(o.notBefore), '-enddate', asn1(o.notAfter),
      '-extfile', extFile, '-extensions', 'ext',
    ]);
    return {
      cn: o.cn,
      certPem: await readFile(certFile, 'utf8'),
      keyPem: await readFile(keyFile, 'utf8'),
      certFile,
      keyFile,
      notBefore: o.notBefore,
      notAfter: o.notAfter,
      serial: o.serial.toString(10),
    };
  }

  /** Writes a PEM file (e.g. a chain: leaf first) and returns its path. */
  async write(name: string, ...certs: Cert[]): Promise<string> {
    const file = join(this.dir, name);
    await writeFile(file, certs.map((c) => c.certPem).join(''));
    return file;
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface TlsServer {
  port: number;
  /** Handshakes completed. */
  handshakes(): number;
  close(): Promise<void>;
}

/**
 * A TLS server on 127.0.0.1 presenting `leaf` followed by `chain` (the intermediates, as a
 * server sends them). `sni` maps server names to other certificates. Connections are closed
 * once the handshake is done.
 */
export async function startTlsServer(leaf: Cert, chain: Cert[] = [], sni: Record<string, { leaf: Cert; chain?: Cert[] }> = {}): Promise<TlsServer> {
  const ctx = (l: Cert, c: Cert[]): tls.SecureContextOptions => ({ key: l.keyPem, cert: l.certPem + c.map((x) => x.certPem).join('') });
  const contexts = new Map(Object.entries(sni).map(([name, v]) => [name, tls.createSecureContext(ctx(v.leaf, v.chain ?? []))]));
  let handshakes = 0;
  const sockets = new Set<Socket>();
  const server = tls.createServer(
    {
      ...ctx(leaf, chain),
      SNICallback: (name, cb) => cb(null, contexts.get(name)),
    },
    (socket) => {
      handshakes++;
      socket.on('error', () => {});
      socket.end();
    },
  );
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // A client that gives up mid-handshake is no error of the server's.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    handshakes: () => handshakes,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
