// A real Alertmanager (Debian's 0.25, /usr/bin/prometheus-alertmanager) for tests, in the
// foreground as a child process. Temp dir layout:
//
//   <dir>/alertmanager.yml   config: one route to one webhook receiver
//   <dir>/data/              --storage.path (notification log, silences)
//   <dir>/alertmanager.log   its stderr (all its logging)
//
// Things about 0.25 that shape this module:
// - Clustering is on by default (gossip on 0.0.0.0:9094, TCP and UDP). With an empty
//   --cluster.listen-address it is off: no gossip ports, and no wait for peers to settle
//   before the first notification. Only `clusterPeers` turns it on, on a loopback port.
// - With clustering, /-/ready answers at once but notifications wait until the cluster has
//   settled (GET /api/v2/status: cluster.status 'ready'): ~10 s at the default 200ms gossip
//   interval, ~2.5 s at the 50ms used here. start() waits for it. Peers stopped at the same
//   time each wait 10 s for the other to acknowledge their leave: stop them one by one.
// - The webhook's `http_config.authorization` ({ type: Bearer, credentials | credentials_file })
//   is accepted; the webhook's `url_file` is not (it came later), so the URL sits in the file.
// - group_interval must not be zero (group_wait may be). A resolved alert reaches the webhook at
//   the group's next group_interval tick, so that bounds the resolve latency.
// - /-/ready answers 200 as soon as the HTTP listener is up (~0.1-0.2 s after spawn).
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './ports.ts';
import { makeTempDir, runTool, waitFor, writeOwnedFile } from './proc.ts';
import { httpReady, launchOnFreePort, ServerLifecycle, startOrDestroy } from './server.ts';
import { mergeYamlConfig } from './yaml-config.ts';

export interface AlertmanagerOptions {
  /** Where the webhook receiver POSTs, e.g. http://127.0.0.1:PORT/hooks/alertmanager. */
  webhookUrl: string;
  /** Sent as `Authorization: Bearer <token>` (http_config.authorization.credentials). */
  bearerToken?: string;
  /** route.group_by; default ['alertname']. ['...'] gives every alert its own notification. */
  groupBy?: string[];
  /** route.group_wait; default '0s' (first notification of a new group at once). */
  groupWait?: string;
  /** route.group_interval; default '1s' (bounds how late changes and resolutions are sent). */
  groupInterval?: string;
  /** route.repeat_interval; default '1h', so an unchanged group is not notified again in a test. */
  repeatInterval?: string;
  /** The webhook's max_alerts; default 0 (all). */
  maxAlerts?: number;
  /**
   * Turns clustering on, listening on a free loopback port (`clusterAddress`), with these
   * `host:port` peers (another harness Alertmanager's clusterAddress); [] for a first member.
   * start() then also waits until the cluster has settled (status 'ready').
   */
  clusterPeers?: string[];
  /** --cluster.peer-timeout (how long the n-th member waits for earlier ones to notify); default 0.25's 15s. */
  peerTimeout?: string;
  /**
   * --cluster.gossip-interval; default '50ms' here (0.25's is 200ms). Settling, which holds back
   * every notification, polls the member count every 10 gossip intervals until it was stable
   * for 3 polls: about 10 s at 200ms, about 2 s at 50ms.
   */
  gossipInterval?: string;
  /** YAML merged into the generated alertmanager.yml (maps merge, lists append). */
  extraConfig?: string;
  /** More command-line flags. */
  extraArgs?: string[];
}

export type Labels = Record<string, string>;

/** An element of GET /api/v2/alerts. */
export interface AmAlert {
  labels: Labels;
  annotations: Labels;
  startsAt: string;
  endsAt: string;
  updatedAt: string;
  generatorURL?: string;
  fingerprint: string;
  receivers: Array<{ name: string }>;
  status: { state: 'unprocessed' | 'active' | 'suppressed'; silencedBy: string[]; inhibitedBy: string[] };
}

/** What POST /api/v2/alerts takes (as Prometheus sends it). */
export interface PostableAlert {
  labels: Labels;
  annotations?: Labels;
  startsAt?: string;
  /** In the past: resolved. */
  endsAt?: string;
  generatorURL?: string;
}

/** Part of GET /api/v2/status. */
export interface AmStatus {
  cluster: { name?: string; status: 'ready' | 'settling' | 'disabled'; peers?: Array<{ name: string; address: string }> };
  config: { original: string };
  versionInfo: Record<string, string>;
  uptime: string;
}

export interface AlertmanagerServer {
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** 127.0.0.1:PORT of the gossip listener when clusterPeers was given. */
  readonly clusterAddress: string | undefined;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  /** The receiver's name in the config (also `receiver` in webhook payloads). */
  readonly receiverName: string;
  readonly pid: number | undefined;
  /** GET /api/v2/status: cluster state and peers, the loaded config, version. */
  status(): Promise<AmStatus>;
  /** GET /api/v2/alerts (active, silenced and inhibited ones). */
  alerts(): Promise<AmAlert[]>;
  /** POST /api/v2/alerts: for tests of the webhook side without a Prometheus. */
  postAlerts(alerts: PostableAlert[]): Promise<void>;
  /** `amtool check-config` on the generated alertmanager.yml; its output. */
  checkConfig(): Promise<string>;
  /** (Re)starts after stop(): same port(s), same dir (notification log and silences kept). */
  start(): Promise<void>;
  /** SIGTERM; waits until the process is gone. Idempotent. */
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
const API_TIMEOUT_MS = 10_000;
const RECEIVER = 'housekeeper-webhook';

function alertmanagerBin(): string {
  return process.env['HOUSEKEEPER_ALERTMANAGER_BIN'] ?? 'prometheus-alertmanager';
}

function amtoolBin(): string {
  return process.env['HOUSEKEEPER_AMTOOL_BIN'] ?? 'amtool';
}

function buildConfig(o: AlertmanagerOptions): string {
  const webhook: Record<string, unknown> = {
    url: o.webhookUrl,
    send_resolved: true,
    max_alerts: o.maxAlerts ?? 0,
  };
  if (o.bearerToken !== undefined) {
    webhook['http_config'] = { authorization: { type: 'Bearer', credentials: o.bearerToken } };
  }
  const config: Record<string, unknown> = {
    route: {
      receiver: RECEIVER,
      group_by: o.groupBy ?? ['alertname'],
      group_wait: o.groupWait ?? '0s',
      group_interval: o.groupInterval ?? '1s',
      repeat_interval: o.repeatInterval ?? '1h',
    },
    receivers: [{ name: RECEIVER, webhook_configs: [webhook] }],
  };
  return '# written by test/harness/alertmanager.ts\n' + stringify(mergeYamlConfig(config, o.extraConfig, 'alertmanager harness'));
}

class AlertmanagerImpl extends ServerLifecycle implements AlertmanagerServer {
  protected readonly kind = 'alertmanager';
  port = 0;
  clusterPort: number | undefined;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly dataDir: string;
  readonly receiverName = RECEIVER;
  private readonly opts: AlertmanagerOptions;

  constructor(dir: string, opts: AlertmanagerOptions) {
    super();
    this.dir = dir;
    this.opts = opts;
    this.configFile = path.join(dir, 'alertmanager.yml');
    this.logFile = path.join(dir, 'alertmanager.log');
    this.dataDir = path.join(dir, 'data');
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get clusterAddress(): string | undefined {
    return this.clusterPort === undefined ? undefined : `127.0.0.1:${this.clusterPort}`;
  }

  writeConfig(): void {
    // The bearer token is in here: 0600.
    writeOwnedFile(this.configFile, buildConfig(this.opts), undefined, 0o600);
  }

  async launch(): Promise<void> {
    const cluster =
      this.clusterAddress === undefined
        ? ['--cluster.listen-address=']
        : [
            `--cluster.listen-address=${this.clusterAddress}`,
            `--cluster.advertise-address=${this.clusterAddress}`,
            ...(this.opts.clusterPeers ?? []).map((p) => `--cluster.peer=${p}`),
            `--cluster.gossip-interval=${this.opts.gossipInterval ?? '50ms'}`,
            ...(this.opts.peerTimeout !== undefined ? [`--cluster.peer-timeout=${this.opts.peerTimeout}`] : []),
          ];
    await this.spawnUntilReady({
      name: `alertmanager :${this.port}`,
      cmd: alertmanagerBin(),
      args: [
        `--config.file=${this.configFile}`,
        `--storage.path=${this.dataDir}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        // externalURL in webhook payloads points here instead of http://<hostname>:9093.
        `--web.external-url=${this.url}/`,
        ...cluster,
        ...(this.opts.extraArgs ?? []),
      ],
      logFile: this.logFile,
      asOwner: undefined,
      stopSignal: 'SIGTERM',
      exitSignal: 'SIGTERM',
      cwd: this.dir,
    }, async (proc) => {
      await waitFor(`alertmanager on port ${this.port}`, proc, () => httpReady(this.url), { timeoutMs: READY_TIMEOUT_MS });
      if (this.clusterAddress !== undefined) {
        // /-/ready does not wait for the cluster; notifications do. Wait until it has settled.
        await waitFor(`alertmanager on port ${this.port}: cluster settled`, proc, async () => {
          const st = await this.status();
          return st.cluster.status === 'ready' ? true : undefined;
        }, { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100 });
      }
    });
  }

  async status(): Promise<AmStatus> {
    const res = await fetch(`${this.url}/api/v2/status`, { signal: AbortSignal.timeout(API_TIMEOUT_MS) });
    const text = await res.text();
    if (!res.ok) throw new Error(`alertmanager GET /api/v2/status: HTTP ${res.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as AmStatus;
  }

  async alerts(): Promise<AmAlert[]> {
    const res = await fetch(`${this.url}/api/v2/alerts`, { signal: AbortSignal.timeout(API_TIMEOUT_MS) });
    const text = await res.text();
    if (!res.ok) throw new Error(`alertmanager GET /api/v2/alerts: HTTP ${res.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as AmAlert[];
  }

  async postAlerts(alerts: PostableAlert[]): Promise<void> {
    const res = await fetch(`${this.url}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(alerts),
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`alertmanager POST /api/v2/alerts: HTTP ${res.status}: ${text.slice(0, 300)}`);
  }

  checkConfig(): Promise<string> {
    return runTool(amtoolBin(), ['check-config', this.configFile], { asOwner: undefined, timeoutMs: 30_000 });
  }

}

export async function startAlertmanager(opts: AlertmanagerOptions): Promise<AlertmanagerServer> {
  const a = new AlertmanagerImpl(makeTempDir('hk-alertmanager-', undefined), { ...opts });
  return startOrDestroy(a, () => launchOnFreePort(a, async () => {
    // A gossip port taken meanwhile fails the same way (bind: address already in use): both are fresh per try.
    a.clusterPort = opts.clusterPeers !== undefined ? await freePort() : undefined;
    a.writeConfig();
    await a.launch();
  }));
}
