// The Prometheus and Alertmanager harness: a real Prometheus scrapes a gauge served here,
// evaluates a rule on it, a real Alertmanager routes the alert to a webhook receiver here
// with the bearer token, and the resolution follows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startAlertmanager, type AlertmanagerServer } from './harness/alertmanager.ts';
import { startPrometheus, type PrometheusServer } from './harness/prometheus.ts';
import { forceNextPorts } from './harness/ports.ts';
import { pidAlive } from './harness/proc.ts';
import { elapse, eventuallyWithin } from './helpers/wait.ts';

const eventually = eventuallyWithin(20_000);

function listen(server: http.Server | net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : 0);
    });
  });
}

function close(server: http.Server | net.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    if (server instanceof http.Server) server.closeAllConnections();
  });
}

/** Alertmanager's webhook payload, version 4. */
interface WebhookPayload {
  version: string;
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: Array<{
    status: 'firing' | 'resolved';
    labels: Record<string, string>;
    annotations: Record<string, string>;
    startsAt: string;
    endsAt: string;
    generatorURL: string;
    fingerprint: string;
  }>;
}

interface Received {
  at: number;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: WebhookPayload;
}

const RULES = `# harness test rules
groups:
  - name: harness-test
    interval: 1m # shortened by groupIntervalOverride
    rules:
      - alert: HarnessGaugeHigh
        expr: hk_harness_gauge > 5
        for: 10m # set to 2s by forOverride
        keep_firing_for: 10m # capped at 0s by keepFiringForOverride
        labels:
          severity: warning
        annotations:
          summary: 'gauge is {{ $value }}'
      - alert: HarnessNeverFires
        expr: hk_harness_gauge > 1e9
        for: 1s
`;

describe('prometheus + alertmanager harness', () => {
  const token = randomBytes(16).toString('hex');
  let gauge = 0;
  const received: Received[] = [];
  const timings: Record<string, number> = {};
  let metricsServer: http.Server;
  let receiver: http.Server;
  let metricsPort = 0;
  let receiverPort = 0;
  let rulesDir = '';
  let ruleFile = '';
  let am: AlertmanagerServer;
  let prom: PrometheusServer;

  before(async () => {
    metricsServer = http.createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(`# HELP hk_harness_gauge A gauge the test sets.\n# TYPE hk_harness_gauge gauge\nhk_harness_gauge ${gauge}\n`);
    });
    receiver = http.createServer((req, res) => {
      let data = '';
      req.on('data', (d: Buffer) => (data += d.toString()));
      req.on('end', () => {
        received.push({ at: performance.now(), method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: JSON.parse(data) as WebhookPayload });
        res.writeHead(200).end();
      });
    });
    metricsPort = await listen(metricsServer);
    receiverPort = await listen(receiver);
    rulesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hk-prom-test-'));
    ruleFile = path.join(rulesDir, 'harness.rules.yml');
    fs.writeFileSync(ruleFile, RULES);

    let t0 = performance.now();
    am = await startAlertmanager({ webhookUrl: `http://127.0.0.1:${receiverPort}/hooks/alertmanager`, bearerToken: token });
    timings['alertmanager.start'] = Math.round(performance.now() - t0);
    t0 = performance.now();
    prom = await startPrometheus({
      scrapeTargets: [{ job: 'harness-gauge', url: `http://127.0.0.1:${metricsPort}/metrics` }],
      ruleFiles: [path.join(rulesDir, '*.rules.yml')],
      alertmanagerUrl: am.url,
      scrapeInterval: '1s',
      evaluationInterval: '1s',
      forOverride: { HarnessGaugeHigh: '2s' },
      keepFiringForOverride: '0s',
      groupIntervalOverride: '1s',
    });
    // Ready after ~0.1 s; the rest is 2.42's 5 s discovery tick before the first scrape.
    timings['prometheus.start (incl. first scrape, AM discovered)'] = Math.round(performance.now() - t0);
  });

  after(async () => {
    await Promise.allSettled([prom?.destroy(), am?.destroy()]);
    await Promise.allSettled([close(metricsServer), close(receiver)]);
    fs.rmSync(rulesDir, { recursive: true, force: true });
    console.log('prometheus/alertmanager harness timings (ms):', JSON.stringify(timings));
  });

  test('both listen on loopback; the generated configs pass promtool and amtool', async () => {
    assert.match(prom.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(am.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(am.clusterAddress, undefined);
    assert.match(await prom.checkConfig(), /SUCCESS: .*prometheus\.yml is valid prometheus config file syntax/);
    assert.match(await am.checkConfig(), /SUCCESS/);
    // No gossip listener: the only sockets Alertmanager listens on are the web port.
    const ports = listeningPorts(am.pid!);
    assert.deepEqual(ports, [am.port]);
    // The token is in Alertmanager's config only, which only we can read.
    assert.equal(fs.statSync(am.configFile).mode & 0o777, 0o600);
    assert.ok(fs.readFileSync(am.configFile, 'utf8').includes(token));
  });

  test('the rule copies carry the overrides; the source file is untouched', async () => {
    const groups = await prom.rules();
    assert.equal(groups.length, 1);
    const g = groups[0]!;
    assert.equal(g.interval, 1);
    assert.equal(g.file, prom.loadedRuleFiles[0]);
    const byName = Object.fromEntries(g.rules.map((r) => [r.name, r]));
    assert.equal(byName['HarnessGaugeHigh']?.duration, 2);
    assert.equal(byName['HarnessGaugeHigh']?.keepFiringFor, 0);
    assert.equal(byName['HarnessNeverFires']?.duration, 1);
    for (const r of g.rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError ?? ''}`);
    assert.equal(fs.readFileSync(ruleFile, 'utf8'), RULES);
    assert.match(fs.readFileSync(prom.loadedRuleFiles[0]!, 'utf8'), /# set to 2s by forOverride/, 'comments survive the rewrite');
  });

  test('gauge up → pending → firing → webhook (v4, bearer) → gauge down → resolved', async (t) => {
    const s = await eventually('gauge scraped', async () => (await prom.query('hk_harness_gauge'))[0]);
    assert.equal(s.value[1], '0');
    assert.deepEqual(s.metric, { __name__: 'hk_harness_gauge', instance: `127.0.0.1:${metricsPort}`, job: 'harness-gauge' });
    assert.equal(received.length, 0);

    gauge = 10;
    const tUp = performance.now();
    await eventually('scraped value 10', async () => ((await prom.query('hk_harness_gauge'))[0]?.value[1] === '10' ? true : undefined));
    timings['gauge→scraped'] = Math.round(performance.now() - tUp);
    // for: 2s at a 1 s evaluation interval: pending for two evaluations, then firing.
    const pending = await eventually('pending', async () => (await prom.alerts()).find((a) => a.labels['alertname'] === 'HarnessGaugeHigh'));
    assert.equal(pending.state, 'pending');
    timings['gauge→pending'] = Math.round(performance.now() - tUp);
    await eventually('firing', async () =>
      (await prom.alerts()).find((a) => a.labels['alertname'] === 'HarnessGaugeHigh' && a.state === 'firing'),
    );
    timings['gauge→firing'] = Math.round(performance.now() - tUp);
    const firing = await eventually('firing webhook', () => received.find((r) => r.body.status === 'firing'));
    timings['gauge→webhook firing'] = Math.round(firing.at - tUp);

    assert.equal(firing.method, 'POST');
    assert.equal(firing.url, '/hooks/alertmanager');
    assert.equal(firing.headers['authorization'], `Bearer ${token}`);
    assert.match(String(firing.headers['content-type']), /^application\/json/);
    assert.match(String(firing.headers['user-agent']), /^Alertmanager\/0\.25/);
    const p = firing.body;
    assert.equal(p.version, '4');
    assert.equal(p.receiver, am.receiverName);
    assert.equal(p.externalURL, am.url);
    assert.deepEqual(p.groupLabels, { alertname: 'HarnessGaugeHigh' });
    assert.equal(p.truncatedAlerts, 0);
    assert.equal(p.alerts.length, 1);
    const a = p.alerts[0]!;
    assert.equal(a.status, 'firing');
    assert.deepEqual(a.labels, { alertname: 'HarnessGaugeHigh', severity: 'warning', instance: `127.0.0.1:${metricsPort}`, job: 'harness-gauge' });
    assert.deepEqual(a.annotations, { summary: 'gauge is 10' });
    assert.ok(a.generatorURL.startsWith(`${prom.url}/graph?`), a.generatorURL);
    assert.equal(a.endsAt, '0001-01-01T00:00:00Z');

    const inAm = await am.alerts();
    const mine = inAm.find((x) => x.labels['alertname'] === 'HarnessGaugeHigh');
    assert.equal(mine?.status.state, 'active');
    assert.equal(mine?.fingerprint, a.fingerprint);
    assert.deepEqual(mine?.receivers.map((r) => r.name), [am.receiverName]);

    gauge = 0;
    const tDown = performance.now();
    await eventually('alert gone from prometheus', async () =>
      (await prom.alerts()).some((x) => x.labels['alertname'] === 'HarnessGaugeHigh') ? undefined : true,
    );
    timings['gauge→inactive'] = Math.round(performance.now() - tDown);
    const resolved = await eventually('resolved webhook', () => received.find((r) => r.body.status === 'resolved'));
    timings['gauge→webhook resolved'] = Math.round(resolved.at - tDown);
    assert.equal(resolved.headers['authorization'], `Bearer ${token}`);
    assert.equal(resolved.body.version, '4');
    assert.equal(resolved.body.groupKey, p.groupKey);
    assert.equal(resolved.body.alerts.length, 1);
    assert.equal(resolved.body.alerts[0]!.status, 'resolved');
    assert.equal(resolved.body.alerts[0]!.fingerprint, a.fingerprint);
    assert.notEqual(resolved.body.alerts[0]!.endsAt, '0001-01-01T00:00:00Z');
    // One notification each: repeat_interval 1h, and nothing changed in between.
    assert.deepEqual(received.map((r) => r.body.status), ['firing', 'resolved']);
    for (const [k, v] of Object.entries(timings)) if (k.startsWith('gauge')) t.diagnostic(`${k}: ${v} ms`);
  });

  test('reload(): a string forOverride caps every longer for:; a broken rule file is refused with the reason', async () => {
    const t0 = performance.now();
    await prom.reload({ forOverride: '30s' });
    timings['reload (incl. Alertmanager rediscovery)'] = Math.round(performance.now() - t0);
    const rules = (await prom.rules())[0]!.rules;
    assert.deepEqual(
      rules.map((r) => [r.name, r.duration]),
      [
        ['HarnessGaugeHigh', 30],
        ['HarnessNeverFires', 1],
      ],
    );
    fs.writeFileSync(ruleFile, RULES.replace('hk_harness_gauge > 5', 'hk_harness_gauge >'));
    await assert.rejects(prom.reload(), /reload refused \(HTTP 500\).*HarnessGaugeHigh.*could not parse expression/s);
    fs.writeFileSync(ruleFile, RULES);
    await assert.rejects(prom.reload({ forOverride: { NoSuchAlert: '1s' } }), /forOverride names alerts no rule file defines: NoSuchAlert/);
    await prom.reload({ forOverride: { HarnessGaugeHigh: '2s' } });
    assert.equal((await prom.rules())[0]!.rules[0]!.duration, 2);
  });

  test('a port taken before the bind: both start on another one; destroy() leaves nothing', async () => {
    // Holds the port; whatever connects (the harness's readiness probe) is hung up on at once.
    const blocker = net.createServer((sock) => sock.destroy());
    const taken = await listen(blocker);
    try {
      forceNextPorts(taken);
      const am2 = await startAlertmanager({ webhookUrl: `http://127.0.0.1:${receiverPort}/other` });
      forceNextPorts(taken);
      const p2 = await startPrometheus({ scrapeTargets: [{ job: 'x', url: `http://127.0.0.1:${metricsPort}/metrics` }], waitForTargets: false });
      assert.notEqual(am2.port, taken);
      assert.notEqual(p2.port, taken);
      const pids = [am2.pid!, p2.pid!];
      const dirs = [am2.dir, p2.dir];
      await Promise.all([am2.destroy(), p2.destroy()]);
      for (const pid of pids) assert.ok(!pidAlive(pid), `pid ${pid} still alive`);
      for (const d of dirs) assert.ok(!fs.existsSync(d), `${d} still there`);
    } finally {
      await close(blocker);
    }
  });

  test('clusterPeers: two Alertmanagers gossip on loopback and notify once for an alert both hold', async () => {
    const hook = `http://127.0.0.1:${receiverPort}/cluster`;
    const t0 = performance.now();
    const a1 = await startAlertmanager({ webhookUrl: hook, clusterPeers: [], peerTimeout: '1s' });
    let a2: AlertmanagerServer | undefined;
    try {
      a2 = await startAlertmanager({ webhookUrl: hook, clusterPeers: [a1.clusterAddress!], peerTimeout: '1s' });
      timings['2 clustered alertmanagers settled'] = Math.round(performance.now() - t0);
      assert.match(a1.clusterAddress!, /^127\.0\.0\.1:\d+$/);
      const peers = (await a2.status()).cluster.peers?.map((p) => p.address).sort();
      assert.deepEqual(peers, [a1.clusterAddress, a2.clusterAddress].sort());
      const alert = { labels: { alertname: 'HarnessClustered', severity: 'page' }, annotations: { summary: 'both hold it' } };
      await Promise.all([a1.postAlerts([alert]), a2.postAlerts([alert])]);
      const fromCluster = (): Received[] => received.filter((r) => r.url === '/cluster');
      const tPost = performance.now();
      await eventually('clustered notification', () => (fromCluster().length > 0 ? true : undefined));
      timings['clustered post→webhook'] = Math.round(performance.now() - tPost);
      // The second member waits peer_timeout (1 s), sees the first one's entry in the gossiped
      // notification log and stays quiet. Give it twice that before counting.
      await elapse(2500, 'the second member\'s peer_timeout, twice: it must stay quiet');
      assert.equal(fromCluster().length, 1);
      assert.equal(fromCluster()[0]!.body.alerts[0]!.labels['alertname'], 'HarnessClustered');
    } finally {
      const tStop = performance.now();
      // One after the other: stopping both at once, each waits for the other to acknowledge its leave.
      await a2?.destroy().catch(() => {});
      await a1.destroy();
      timings['2 clustered alertmanagers destroyed'] = Math.round(performance.now() - tStop);
    }
  });
});

/** TCP ports a process listens on, from /proc/<pid>/net/tcp{,6} and its socket inodes. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const proto of ['tcp', 'tcp6', 'udp', 'udp6']) {
    let text = '';
    try {
      text = fs.readFileSync(`/proc/${pid}/net/${proto}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      // TCP state 0A is LISTEN; any bound UDP socket counts (gossip would use one).
      const listening = proto.startsWith('udp') || f[3] === '0A';
      if (listening && inodes.has(f[9]!)) ports.add(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return [...ports].sort((x, y) => x - y);
}
