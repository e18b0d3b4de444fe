import { X509Certificate } from 'node:crypto';
import { open } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import type { CertificateConfig } from '../config.ts';
import type { MetricFactory } from '../metrics/registry.ts';
import { defineCollector, type CollectContext } from './collector.ts';

// TLS certificates, with ssl_exporter's names and labels (ssl_cert_not_after for an endpoint's
// certificates, ssl_file_cert_not_after for a file's, ssl_probe_success, ssl_tls_version_info),
// plus two per-target gauges without certificate labels, for the runbook's "expiry 30 days
// ahead" alert: the leaf's not-after and the earliest not-after in the chain.
//
// An endpoint is probed with a TLS handshake on every scrape (as ssl_exporter does), bounded by
// the scrape's deadline. Verification is not allowed to hide what is being monitored: the
// handshake accepts any chain (rejectUnauthorized: false) so an expired or untrusted certificate
// is still read and reported, and whether the chain verifies (trusted roots, validity dates,
// host name) is reported separately by ssl_verified_chain. The chain is the one Node builds from
// what the server sent, completed with the root from the trust store when it is there.
// A file is read on every scrape and may hold a chain (leaf first), as ssl_exporter's file prober.

const MAX_CHAIN = 10;
/** SAN lists longer than this are cut, so a certificate with hundreds of names cannot make huge labels. */
const MAX_NAMES = 20;
const MAX_FILE_BYTES = 1024 * 1024;
const CERT_LABELS = ['serial_no', 'issuer_cn', 'cn', 'dnsnames', 'ips', 'emails', 'ou'];

function declare(f: MetricFactory) {
  const g = f.gauge.bind(f);
  return {
    up: g(
      'ssl_probe_success',
      'Whether the probe succeeded (1) or not (0): a TLS handshake with the endpoint, or at least one certificate read from the file. An expired or untrusted certificate still succeeds (see ssl_verified_chain).',
    ),
    notAfter: g('ssl_cert_not_after', 'NotAfter of each certificate in the endpoint\'s chain, seconds since epoch.', CERT_LABELS),
    notBefore: g('ssl_cert_not_before', 'NotBefore of each certificate in the endpoint\'s chain, seconds since epoch.', CERT_LABELS),
    // ssl_exporter labels each verified chain with chain_no (0 = the chain that stays valid
    // longest); OpenSSL, through Node, builds one chain, so chain_no is always "0" here and the
    // series are at most MAX_CHAIN per endpoint. Absent when the chain does not verify, as there.
    verifiedNotAfter: g('ssl_verified_cert_not_after', 'NotAfter of each certificate in the endpoint\'s verified chain, seconds since epoch (absent when the chain does not verify).', ['chain_no', ...CERT_LABELS]),
    verifiedNotBefore: g('ssl_verified_cert_not_before', 'NotBefore of each certificate in the endpoint\'s verified chain, seconds since epoch (absent when the chain does not verify).', ['chain_no', ...CERT_LABELS]),
    fileNotAfter: g('ssl_file_cert_not_after', 'NotAfter of each certificate in the file, seconds since epoch.', ['file', ...CERT_LABELS]),
    fileNotBefore: g('ssl_file_cert_not_before', 'NotBefore of each certificate in the file, seconds since epoch.', ['file', ...CERT_LABELS]),
    leaf: g('ssl_leaf_cert_not_after', 'NotAfter of the leaf certificate (the endpoint\'s own, or the first in the file), seconds since epoch.'),
    earliest: g('ssl_chain_earliest_not_after', 'Earliest NotAfter among the certificates of the chain, seconds since epoch: when the chain stops being valid.'),
    tlsVersion: g('ssl_tls_version_info', 'The TLS version negotiated with the endpoint (value 1).', ['version']),
    verified: g('ssl_verified_chain', 'Whether the endpoint\'s chain verifies against the trusted roots, is within its dates and matches the host name (1) or not (0).'),
    verifyError: g('ssl_verify_error_info', 'Why the endpoint\'s chain does not verify, as OpenSSL or Node names it (value 1; absent when it verifies).', ['error']),
  };
}
type Metrics = ReturnType<typeof declare>;

interface Cert {
  notAfter: number;
  notBefore: number;
  labels: Record<string, string>;
}

/** "C=US\nO=Acme\nCN=api" → values of one attribute. */
function attributes(dn: string, key: string): string[] {
  return dn
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

/** ssl_exporter's list label form: ",a,b," (so `=~".*,a,.*"` matches), or "" when empty. */
function list(values: string[]): string {
  return values.length === 0 ? '' : `,${values.slice(0, MAX_NAMES).join(',')},`;
}

/** Node's subjectAltName: "DNS:a, DNS:b, IP Address:127.0.0.1, email:x@y" (odd values JSON-quoted). */
function altNames(x: X509Certificate): { dns: string[]; ips: string[]; emails: string[] } {
  const out = { dns: [] as string[], ips: [] as string[], emails: [] as string[] };
  for (const m of (x.subjectAltName ?? '').matchAll(/(DNS|IP Address|email):("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const raw = (m[2] ?? '').trim();
    let v = raw;
    if (raw.startsWith('"')) {
      try {
        v = JSON.parse(raw) as string;
      } catch {
        v = raw;
      }
    }
    if (m[1] === 'DNS') out.dns.push(v);
    else if (m[1] === 'IP Address') out.ips.push(v);
    else out.emails.push(v);
  }
  return out;
}

function describe(x: X509Certificate): Cert {
  const san = altNames(x);
  return {
    notAfter: x.validToDate.getTime() / 1000,
    notBefore: x.validFromDate.getTime() / 1000,
    labels: {
      // Decimal, as ssl_exporter prints Go's big.Int.
      serial_no: BigInt(`0x${x.serialNumber}`).toString(10),
      issuer_cn: attributes(x.issuer, 'CN')[0] ?? '',
      cn: attributes(x.subject, 'CN')[0] ?? '',
      dnsnames: list(san.dns),
      ips: list(san.ips),
      emails: list(san.emails),
      ou: list(attributes(x.subject, 'OU')),
    },
  };
}

function tlsVersion(protocol: string | null): string {
  const v = /^TLSv(1(?:\.[0-3])?)$/.exec(protocol ?? '')?.[1];
  if (v === undefined) return 'unknown';
  return `TLS ${v === '1' ? '1.0' : v}`;
}

interface Handshake {
  chain: X509Certificate[];
  protocol: string | null;
  authorized: boolean;
  error: string | undefined;
}

/** The chain Node assembled: the peer's certificate, then each issuer until a self-signed one. */
function peerChain(socket: tls.TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let cur: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cur && cur.raw && !seen.has(cur.fingerprint256) && chain.length < MAX_CHAIN) {
    seen.add(cur.fingerprint256);
    chain.push(new X509Certificate(cur.raw));
    cur = cur.issuerCertificate;
  }
  return chain;
}

function handshake(c: Extract<CertificateConfig, { kind: 'endpoint' }>, ca: tls.SecureContext | undefined, signal: AbortSignal): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      return;
    }
    // SNI takes a host name, never an address (RFC 6066); the identity check uses it too.
    const servername = c.serverName ?? (net.isIP(c.host) === 0 ? c.host : undefined);
    const socket = tls.connect({ host: c.host, port: c.port, servername, rejectUnauthorized: false, ...(ca ? { secureContext: ca } : {}) });
    let settled = false;
    const finish = (err: Error | undefined, result?: Handshake): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve(result as Handshake);
    };
    const onAbort = (): void => finish(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('secureConnect', () => {
      try {
        const err = socket.authorizationError as unknown;
        const code = err === null || err === undefined ? undefined : err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.message) : String(err);
        finish(undefined, { chain: peerChain(socket), protocol: socket.getProtocol(), authorized: socket.authorized, error: code });
      } catch (e) {
        finish(e as Error);
      }
    });
    socket.once('error', (err) => finish(err));
    socket.once('close', () => finish(new Error('connection closed before the TLS handshake completed')));
  });
}

async function readBounded(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size > MAX_FILE_BYTES) throw new Error(`${path} is ${size} bytes; certificate files over ${MAX_FILE_BYTES} are not read`);
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/** Every CERTIFICATE block of a PEM text, duplicates dropped (as ssl_exporter does). */
export function parsePem(text: string): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<string>();
  for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)) {
    const x = new X509Certificate(m[0]);
    if (seen.has(x.fingerprint256)) continue;
    seen.add(x.fingerprint256);
    out.push(x);
  }
  return out;
}

function setChain(ctx: CollectContext<CertificateConfig>, m: Metrics, certs: Cert[]): void {
  const leaf = certs[0];
  if (leaf) ctx.set(m.leaf, {}, leaf.notAfter);
  if (certs.length > 0) ctx.set(m.earliest, {}, Math.min(...certs.map((x) => x.notAfter)));
}

// Building a context from the ~150 bundled roots plus a ca_file parses every one of them,
// synchronously (~20 ms of blocked event loop per endpoint and scrape). The file is still
// read on every scrape, so a replaced CA takes effect at once; the context is rebuilt only
// when its text changed.
const caContexts = new WeakMap<CertificateConfig, { text: string; context: tls.SecureContext }>();

function caContext(c: CertificateConfig, text: string): tls.SecureContext {
  const known = caContexts.get(c);
  if (known?.text === text) return known.context;
  const context = tls.createSecureContext({ ca: [...tls.rootCertificates, text] });
  caContexts.set(c, { text, context });
  return context;
}

async function probeEndpoint(ctx: CollectContext<CertificateConfig>, m: Metrics, c: Extract<CertificateConfig, { kind: 'endpoint' }>): Promise<void> {
  let ca: tls.SecureContext | undefined;
  if (c.caFile !== undefined) {
    try {
      ca = caContext(c, await readBounded(c.caFile));
    } catch (err) {
      throw new Error(`ca_file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  let hs: Handshake;
  try {
    hs = await handshake(c, ca, ctx.signal);
  } catch (err) {
    throw new Error(`TLS probe of ${c.host}:${c.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (hs.chain.length === 0) throw new Error(`TLS probe of ${c.host}:${c.port}: no certificate presented`);
  const certs = hs.chain.map(describe);
  // One series per distinct label set: the same certificate twice in a chain is reported once.
  for (const x of certs) {
    ctx.set(m.notAfter, x.labels, x.notAfter);
    ctx.set(m.notBefore, x.labels, x.notBefore);
  }
  setChain(ctx, m, certs);
  if (hs.authorized) {
    for (const x of certs) {
      ctx.set(m.verifiedNotAfter, { chain_no: '0', ...x.labels }, x.notAfter);
      ctx.set(m.verifiedNotBefore, { chain_no: '0', ...x.labels }, x.notBefore);
    }
  }
  ctx.set(m.tlsVersion, { version: tlsVersion(hs.protocol) }, 1);
  ctx.set(m.verified, {}, hs.authorized ? 1 : 0);
  if (!hs.authorized) ctx.set(m.verifyError, { error: hs.error ?? 'unknown' }, 1);
}

async function probeFile(ctx: CollectContext<CertificateConfig>, m: Metrics, c: Extract<CertificateConfig, { kind: 'file' }>): Promise<void> {
  let text: string;
  try {
    text = await readBounded(c.file);
  } catch (err) {
    throw new Error(`cannot read ${c.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const certs = parsePem(text).map(describe);
  if (certs.length === 0) throw new Error(`no PEM certificate in ${c.file}`);
  for (const x of certs) {
    ctx.set(m.fileNotAfter, { file: c.file, ...x.labels }, x.notAfter);
    ctx.set(m.fileNotBefore, { file: c.file, ...x.labels }, x.notBefore);
  }
  setChain(ctx, m, certs);
}

export default defineCollector<CertificateConfig, Metrics>({
  name: 'certificates',
  enabledByDefault: true,
  // Nothing to connect ahead of time: the config entries are the targets.
  targets: (_t, config) => config.certificates,
  metrics: declare,
  up: (m) => m.up,
  async collect(ctx, m) {
    const c = ctx.target;
    if (c.kind === 'endpoint') await probeEndpoint(ctx, m, c);
    else await probeFile(ctx, m, c);
  },
});
