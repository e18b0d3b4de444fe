import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CertFactory, startTlsServer, type Cert, type TlsServer } from './harness/tls.ts';
import { freePort } from './harness/ports.ts';
import { find, startService, value, type Service } from './helpers/service.ts';
import { configFrom } from './helpers/config.ts';
import { until } from './helpers/wait.ts';

// The certificates collector against real TLS servers on loopback and PEM files, with
// certificates made here by openssl with exact dates: a CA-signed chain (root, intermediate
// expiring before the leaf, leaf), one expiring in 10 days (self-signed), one expired.

const DAY = 86_400;
const nowS = Math.floor(Date.now() / 1000);

let f: CertFactory;
let root: Cert;
let inter: Cert;
let valid: Cert;
let sniCert: Cert;
let soon: Cert;
let expired: Cert;
const servers: TlsServer[] = [];
let svc: Service;
let files: { root: string; chain: string; soon: string; expired: string; garbage: string };

/** A scrape bounded on the test's side, with Prometheus's timeout header when given. */
async function scrape(s: Service, timeoutSeconds?: number): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = timeoutSeconds === undefined ? {} : { 'X-Prometheus-Scrape-Timeout-Seconds': String(timeoutSeconds) };
  const r = await fetch(`${s.url}/metrics`, { headers, signal: AbortSignal.timeout(15_000) });
  return { status: r.status, body: await r.text() };
}

before(async () => {
  f = await CertFactory.create();
  root = await f.issue({ cn: 'Housekeeper Test Root', ca: true, serial: 0x1001n, notBefore: nowS - 10 * DAY, notAfter: nowS + 3650 * DAY });
  inter = await f.issue({ cn: 'Housekeeper Test Intermediate', ca: true, serial: 0x2002n, notBefore: nowS - 10 * DAY, notAfter: nowS + 60 * DAY }, root);
  valid = await f.issue(
    { cn: 'localhost', ou: 'ops', san: ['DNS:localhost', 'DNS:valid.test', 'IP:127.0.0.1'], serial: 0xabcdef0123n, notBefore: nowS - DAY, notAfter: nowS + 100 * DAY },
    inter,
  );
  sniCert = await f.issue({ cn: 'api.test', san: ['DNS:api.test'], serial: 0x5005n, notBefore: nowS - DAY, notAfter: nowS + 200 * DAY }, inter);
  soon = await f.issue({ cn: 'soon.test', san: ['DNS:soon.test', 'IP:127.0.0.1'], serial: 0x3003n, notBefore: nowS - 80 * DAY, notAfter: nowS + 10 * DAY });
  expired = await f.issue({ cn: 'expired.test', san: ['DNS:expired.test', 'IP:127.0.0.1'], serial: 0x4004n, notBefore: nowS - 40 * DAY, notAfter: nowS - DAY }, root);
  files = {
    root: await f.write('root.pem', root),
    chain: await f.write('chain.pem', valid, inter),
    soon: await f.write('soon.pem', soon),
    expired: await f.write('expired.pem', expired),
    garbage: join(f.dir, 'garbage.pem'),
  };
  await writeFile(files.garbage, 'not a certificate\n');
  const validSrv = await startTlsServer(valid, [inter], { 'api.test': { leaf: sniCert, chain: [inter] } });
  const soonSrv = await startTlsServer(soon);
  const expiredSrv = await startTlsServer(expired);
  servers.push(validSrv, soonSrv, expiredSrv);
  const closed = await freePort();
  svc = await startService(`
certificates:
  - { name: valid, host: 127.0.0.1, port: ${validSrv.port}, ca_file: ${files.root} }
  - { name: valid-sni, host: 127.0.0.1, port: ${validSrv.port}, server_name: api.test, ca_file: ${files.root} }
  - { name: soon, host: 127.0.0.1, port: ${soonSrv.port} }
  - { name: expired, host: 127.0.0.1, port: ${expiredSrv.port}, ca_file: ${files.root} }
  - { name: closed, host: 127.0.0.1, port: ${closed} }
  - { name: chain-file, file: ${files.chain} }
  - { name: soon-file, file: ${files.soon} }
  - { name: expired-file, file: ${files.expired} }
  - { name: missing-file, file: ${join(f.dir, 'missing.pem')} }
  - { name: garbage-file, file: ${files.garbage} }
`);
});

after(async () => {
  await svc?.close();
  for (const s of servers) await s.close();
  await f?.close();
});

function labels(c: Cert, issuer: Cert | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return { cn: c.cn, serial_no: c.serial, issuer_cn: (issuer ?? c).cn, ...extra };
}

test('a CA-signed endpoint: every certificate\'s not-after, the leaf, the earliest in the chain, verified', async () => {
  const { status, body } = await scrape(svc);
  assert.equal(status, 200);
  const t = { target: 'valid' };
  assert.equal(value(body, 'ssl_probe_success', t), 1);
  // ssl_exporter's labels, SAN lists in its ",a,b," form.
  assert.equal(
    value(body, 'ssl_cert_not_after', { ...t, ...labels(valid, inter), dnsnames: ',localhost,valid.test,', ips: ',127.0.0.1,', emails: '', ou: ',ops,' }),
    valid.notAfter,
  );
  assert.equal(value(body, 'ssl_cert_not_before', { ...t, ...labels(valid, inter) }), valid.notBefore);
  assert.equal(value(body, 'ssl_cert_not_after', { ...t, ...labels(inter, root) }), inter.notAfter);
  assert.equal(value(body, 'ssl_leaf_cert_not_after', t), valid.notAfter);
  assert.equal(value(body, 'ssl_chain_earliest_not_after', t), inter.notAfter, 'the intermediate expires before the leaf');
  assert.equal(value(body, 'ssl_verified_chain', t), 1);
  assert.equal(find(body, 'ssl_verify_error_info', t).length, 0);
  assert.equal(value(body, 'ssl_tls_version_info', { ...t, version: 'TLS 1.3' }), 1);
});

test('ssl_verified_cert_not_after: the verified chain with ssl_exporter\'s labels (chain_no "0"), absent when the chain does not verify', async () => {
  const { body } = await scrape(svc);
  const t = { target: 'valid', chain_no: '0' };
  // The chain OpenSSL verified: the leaf, the intermediate the server sent, the root from ca_file.
  assert.equal(
    value(body, 'ssl_verified_cert_not_after', { ...t, ...labels(valid, inter), dnsnames: ',localhost,valid.test,', ips: ',127.0.0.1,', emails: '', ou: ',ops,' }),
    valid.notAfter,
  );
  assert.equal(value(body, 'ssl_verified_cert_not_after', { ...t, ...labels(inter, root) }), inter.notAfter);
  assert.equal(value(body, 'ssl_verified_cert_not_after', { ...t, ...labels(root, undefined) }), root.notAfter);
  assert.equal(value(body, 'ssl_verified_cert_not_before', { ...t, ...labels(inter, root) }), inter.notBefore);
  assert.equal(find(body, 'ssl_verified_cert_not_after', { target: 'valid' }).length, 3);
  // awesome-prometheus-alerts' SslCertificateExpiry reads chain_no="0": its earliest is the intermediate.
  assert.equal(Math.min(...find(body, 'ssl_verified_cert_not_after', t).map((x) => x.value)), inter.notAfter);
  for (const target of ['soon', 'expired', 'closed']) {
    assert.equal(find(body, 'ssl_verified_cert_not_after', { target }).length, 0, `${target} has no verified chain`);
  }
});

test('a ca_file replaced between scrapes is the CA the next scrape verifies with', async () => {
  const ca = join(f.dir, 'rotating-ca.pem');
  await writeFile(ca, root.certPem);
  const port = servers[0]?.port;
  const s = await startService(`
certificates:
  - { name: rotating, host: 127.0.0.1, port: ${port}, ca_file: ${ca} }
`);
  try {
    const t = { target: 'rotating' };
    assert.equal(value((await scrape(s)).body, 'ssl_verified_chain', t), 1);
    await writeFile(ca, soon.certPem);
    assert.equal(value((await scrape(s)).body, 'ssl_verified_chain', t), 0, 'an unrelated CA no longer verifies the chain');
    await writeFile(ca, root.certPem);
    assert.equal(value((await scrape(s)).body, 'ssl_verified_chain', t), 1, 'the original CA verifies it again');
  } finally {
    await s.close();
  }
});

test('the SNI server name selects the certificate and is the name verified', async () => {
  const { body } = await scrape(svc);
  const t = { target: 'valid-sni' };
  assert.equal(value(body, 'ssl_probe_success', t), 1);
  assert.equal(value(body, 'ssl_leaf_cert_not_after', t), sniCert.notAfter);
  assert.equal(value(body, 'ssl_cert_not_after', { ...t, ...labels(sniCert, inter), dnsnames: ',api.test,' }), sniCert.notAfter);
  assert.equal(value(body, 'ssl_verified_chain', t), 1);
});

test('a certificate expiring in 10 days is read and flagged; self-signed, it does not verify', async () => {
  const { body } = await scrape(svc);
  const t = { target: 'soon' };
  assert.equal(value(body, 'ssl_probe_success', t), 1);
  assert.equal(value(body, 'ssl_cert_not_after', { ...t, ...labels(soon, undefined) }), soon.notAfter);
  assert.equal(value(body, 'ssl_leaf_cert_not_after', t), soon.notAfter);
  assert.equal(value(body, 'ssl_chain_earliest_not_after', t), soon.notAfter);
  assert.equal(soon.notAfter - nowS, 10 * DAY);
  assert.equal(value(body, 'ssl_verified_chain', t), 0);
  assert.equal(value(body, 'ssl_verify_error_info', { ...t, error: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 1);
});

test('an expired certificate is still read (probe success), and verification says expired', async () => {
  const { body } = await scrape(svc);
  const t = { target: 'expired' };
  assert.equal(value(body, 'ssl_probe_success', t), 1);
  assert.equal(value(body, 'ssl_cert_not_after', { ...t, ...labels(expired, root) }), expired.notAfter);
  assert.equal(value(body, 'ssl_leaf_cert_not_after', t), expired.notAfter);
  assert.equal(value(body, 'ssl_verified_chain', t), 0);
  assert.equal(value(body, 'ssl_verify_error_info', { ...t, error: 'CERT_HAS_EXPIRED' }), 1);
});

test('a closed port: ssl_probe_success 0 with a 200, and no certificate metrics', async () => {
  const { status, body } = await scrape(svc);
  assert.equal(status, 200);
  assert.equal(value(body, 'ssl_probe_success', { target: 'closed' }), 0);
  assert.equal(value(body, 'housekeeper_collector_success', { collector: 'certificates', target: 'closed' }), 0);
  assert.equal(find(body, 'ssl_cert_not_after', { target: 'closed' }).length, 0);
  assert.equal(find(body, 'ssl_leaf_cert_not_after', { target: 'closed' }).length, 0);
  assert.ok(svc.lines.some((l) => l.includes('ECONNREFUSED')), 'the log says why');
});

test('PEM files: a chain file, one expiring in 10 days, an expired one', async () => {
  const { body } = await scrape(svc);
  const chain = { target: 'chain-file', file: files.chain };
  assert.equal(value(body, 'ssl_probe_success', { target: 'chain-file' }), 1);
  assert.equal(value(body, 'ssl_file_cert_not_after', { ...chain, ...labels(valid, inter), dnsnames: ',localhost,valid.test,' }), valid.notAfter);
  assert.equal(value(body, 'ssl_file_cert_not_after', { ...chain, ...labels(inter, root) }), inter.notAfter);
  assert.equal(value(body, 'ssl_file_cert_not_before', { ...chain, ...labels(inter, root) }), inter.notBefore);
  assert.equal(find(body, 'ssl_file_cert_not_after', chain).length, 2);
  assert.equal(value(body, 'ssl_leaf_cert_not_after', { target: 'chain-file' }), valid.notAfter, 'the first certificate in the file');
  assert.equal(value(body, 'ssl_chain_earliest_not_after', { target: 'chain-file' }), inter.notAfter);
  assert.equal(value(body, 'ssl_file_cert_not_after', { target: 'soon-file', file: files.soon, ...labels(soon, undefined) }), soon.notAfter);
  assert.equal(value(body, 'ssl_chain_earliest_not_after', { target: 'soon-file' }), soon.notAfter);
  assert.equal(value(body, 'ssl_file_cert_not_after', { target: 'expired-file', file: files.expired, ...labels(expired, root) }), expired.notAfter);
  assert.equal(value(body, 'ssl_leaf_cert_not_after', { target: 'expired-file' }), expired.notAfter);
  // Endpoint metrics are for endpoints: files use ssl_file_cert_*.
  assert.equal(find(body, 'ssl_cert_not_after', { target: 'chain-file' }).length, 0);
});

test('a missing file and a file with no certificate: probe success 0, scrape 200', async () => {
  const { status, body } = await scrape(svc);
  assert.equal(status, 200);
  assert.equal(value(body, 'ssl_probe_success', { target: 'missing-file' }), 0);
  assert.equal(value(body, 'ssl_probe_success', { target: 'garbage-file' }), 0);
  assert.ok(svc.lines.some((l) => l.includes('ENOENT')));
  assert.ok(svc.lines.some((l) => l.includes('no PEM certificate')));
});

test('a server that accepts and never completes the handshake: probe success 0 within the deadline', async () => {
  const sockets = new Set<net.Socket>();
  // Reads what the client sends (so it sees the client leave) and never answers.
  const hung = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.resume();
  });
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
  const port = (hung.address() as net.AddressInfo).port;
  const s = await startService(`
certificates:
  - { name: hung, host: 127.0.0.1, port: ${port} }
`);
  try {
    for (let i = 0; i < 3; i++) {
      // Deadline 1 s less the 500 ms offset; the test's own fetch gives up after 15 s.
      const { status, body } = await scrape(s, 1);
      assert.equal(status, 200);
      assert.equal(value(body, 'ssl_probe_success', { target: 'hung' }), 0);
    }
    // Aborted probes close their sockets: nothing piles up on the server.
    await until('the aborted probes\' sockets to close', () => [...sockets].every((x) => x.destroyed), { timeoutMs: 5_000, intervalMs: 20 });
    assert.equal([...sockets].filter((x) => !x.destroyed).length, 0, 'probe sockets left open');
  } finally {
    await s.close();
    for (const x of sockets) x.destroy();
    await new Promise((r) => hung.close(r));
  }
});

test('config: ca_file is resolved against the config file, and refused on a file entry', () => {
  const c = configFrom('certificates:\n  - { name: a, host: example.org, ca_file: certs/ca.pem }\n');
  assert.deepEqual(c.certificates[0], { name: 'a', kind: 'endpoint', host: 'example.org', port: 443, serverName: undefined, caFile: '/test/certs/ca.pem' });
  assert.throws(
    () => configFrom('certificates:\n  - { name: b, file: /etc/ssl/x.pem, ca_file: ca.pem }\n'),
    /certificates\[0\]\.ca_file \(line 2\): ca_file applies to endpoints/,
  );
});
