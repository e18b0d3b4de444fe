// A real Prometheus (Debian's 2.42) for tests, in the foreground as a child process. Temp dir
// layout:
//
//   <dir>/prometheus.yml   config, generated from the options (rewritten by reload())
//   <dir>/rules/NN-<name>  copies of the rule files, with the test's overrides applied
//   <dir>/data/            the TSDB (--storage.tsdb.path)
//   <dir>/prometheus.log   its stderr (all its logging)
//
// Things about 2.42 that shape this module:
// - Scrape targets and Alertmanagers reach the scrape manager and the notifier through the
//   discovery manager, which passes updates on at most every 5 s (and the scrape manager
//   applies them on its own 5 s tick), even for static_configs. So the first scrape comes
//   5-10 s after start or reload, whatever scrape_interval says. Alerts that fire before the
//   notifier knows an Alertmanager are dropped (and resent only after
//   --rules.alert.resend-delay, 1 m by default). start() and reload() therefore wait until
//   every configured target has been scraped once and every Alertmanager is active.
// - `for:` is wall-clock time (an alert turns firing at the first evaluation at least `for`
//   after it became pending), so a `for: 10m` rule needs ten minutes whatever the evaluation
//   interval. `forOverride` rewrites the copies the server loads (see RuleOverrides).
// - A rule group's own `interval:` beats the global evaluation_interval:
//   `groupIntervalOverride` shortens it in the copies.
// - /-/reload (with --web.enable-lifecycle) loads config and rules synchronously: 200 once
//   applied, 500 otherwise (the reasons are only in the log: reload() copies them into its
//   error). The notifier starts every reload with an empty Alertmanager list, refilled at the
//   next 5 s discovery tick: alerts firing in between are dropped, so reload() waits for it too.
import fs from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, stringify } from 'yaml';
import { logTail, makeTempDir, runTool, waitFor, writeOwnedFile } from './proc.ts';
import { httpReady, launchOnFreePort, ServerLifecycle, startOrDestroy } from './server.ts';
import { mergeYamlConfig } from './yaml-config.ts';

export interface ScrapeTarget {
  /** job_name (and the `job` label). Targets sharing a job must share scheme, path and credentials. */
  job: string;
  /** http://127.0.0.1:PORT/metrics: path and query string are kept; user:password@ becomes basic_auth. */
  url: string;
  /** Extra target labels. */
  labels?: Record<string, string>;
  /** Sent as `Authorization: Bearer ...` (the scrape config's `authorization`). */
  bearerToken?: string;
}

/**
 * Rewrites applied to the copies of the rule files that Prometheus loads (the originals are
 * never touched). A string caps the value: a rule or group whose value is longer gets the
 * override, shorter ones keep theirs, rules without the key stay without it. A record (alert
 * name → duration) sets `for` on exactly those alerts, with or without a `for` before; naming an
 * alert that no rule file defines is an error.
 */
export interface RuleOverrides {
  /** `for:` of alerting rules, e.g. '2s' (cap) or { RedisMemoryHigh: '3s' } (exact). */
  forOverride?: string | Record<string, string>;
  /** `keep_firing_for:` of alerting rules (2.42 has it): cap. */
  keepFiringForOverride?: string;
  /** A group's own `interval:`: cap. Groups without one use evaluationInterval. */
  groupIntervalOverride?: string;
}

export interface PrometheusOptions extends RuleOverrides {
  scrapeTargets: ScrapeTarget[];
  /** Rule files: paths or globs (fs.globSync), relative to the cwd; a pattern matching nothing is an error. */
  ruleFiles?: string[];
  /** http://127.0.0.1:PORT of one or more Alertmanagers (API v2). */
  alertmanagerUrl?: string | string[];
  /** global.scrape_interval; default '1s'. scrape_timeout follows it. */
  scrapeInterval?: string;
  /** global.evaluation_interval; default the scrape interval. */
  evaluationInterval?: string;
  /** --rules.alert.resend-delay (how often firing alerts are re-sent to Alertmanager); default Prometheus's 1m. */
  resendDelay?: string;
  /** YAML merged into the generated prometheus.yml (maps merge, lists append: extra scrape_configs add jobs). */
  extraConfig?: string;
  /** More command-line flags. */
  extraArgs?: string[];
  /** Wait in start()/reload() until every target was scraped and every Alertmanager is active; default true. */
  waitForTargets?: boolean;
}

export type Labels = Record<string, string>;

/** One element of an instant vector: value is [unix seconds, "float as string"]. */
export interface Sample {
  metric: Labels;
  value: [number, string];
}

export interface RangeSeries {
  metric: Labels;
  values: Array<[number, string]>;
}

export type QueryResult =
  | { resultType: 'vector'; result: Sample[] }
  | { resultType: 'matrix'; result: RangeSeries[] }
  | { resultType: 'scalar'; result: [number, string] }
  | { resultType: 'string'; result: [number, string] };

/** An element of /api/v1/alerts: pending or firing alerts (inactive ones are not listed). */
export interface PromAlert {
  labels: Labels;
  annotations: Labels;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

export interface RuleStatus {
  type: 'alerting' | 'recording';
  name: string;
  query: string;
  /** `for` in seconds (alerting rules). */
  duration?: number;
  /** `keep_firing_for` in seconds (alerting rules). */
  keepFiringFor?: number;
  labels?: Labels;
  annotations?: Labels;
  health: 'ok' | 'err' | 'unknown';
  lastError?: string;
  state?: 'inactive' | 'pending' | 'firing';
  alerts?: PromAlert[];
}

export interface RuleGroupStatus {
  name: string;
  file: string;
  /** Evaluation interval in seconds. */
  interval: number;
  rules: RuleStatus[];
}

export interface ActiveTarget {
  labels: Labels;
  scrapePool: string;
  scrapeUrl: string;
  lastError: string;
  lastScrape: string;
  health: 'up' | 'down' | 'unknown';
}

export interface PrometheusServer {
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  /** The rule files Prometheus loads (the rewritten copies in <dir>/rules). */
  readonly loadedRuleFiles: readonly string[];
  /** Prometheus's pid while it runs. */
  readonly pid: number | undefined;
  /** Instant query; throws unless the result is an instant vector. `time` in ms since epoch. */
  query(promql: string, time?: number): Promise<Sample[]>;
  /** Instant query, any result type. */
  queryRaw(promql: string, time?: number): Promise<QueryResult>;
  /** Range query; start/end in ms since epoch, step in seconds. */
  queryRange(promql: string, range: { start: number; end: number; step: number }): Promise<RangeSeries[]>;
  /** Pending and firing alerts (GET /api/v1/alerts). */
  alerts(): Promise<PromAlert[]>;
  /** Loaded rule groups with each rule's health, state and `for` (GET /api/v1/rules). */
  rules(): Promise<RuleGroupStatus[]>;
  /** Active scrape targets (GET /api/v1/targets). */
  targets(): Promise<ActiveTarget[]>;
  /**
   * Applies `changes` to the options, re-copies the rule files from their sources (so edits
   * to them are picked up), rewrites prometheus.yml and POSTs /-/reload; throws with
   * Prometheus's error when the reload is refused. Waits for targets like start().
   */
  reload(changes?: Partial<PrometheusOptions>): Promise<void>;
  /** `promtool check config` on the generated prometheus.yml (which checks the rule files too); its output. */
  checkConfig(): Promise<string>;
  /** Until every configured target was scraped once and every Alertmanager is active (bounded). */
  waitForTargets(timeoutMs?: number): Promise<void>;
  /** (Re)starts after stop(): same port, same dir and TSDB. */
  start(): Promise<void>;
  /** SIGTERM (graceful shutdown); waits until the process is gone. Idempotent. */
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
const TARGETS_TIMEOUT_MS = 30_000;
const API_TIMEOUT_MS = 10_000;

function prometheusBin(): string {
  return process.env['HOUSEKEEPER_PROMETHEUS_BIN'] ?? 'prometheus';
}

function promtoolBin(): string {
  return process.env['HOUSEKEEPER_PROMTOOL_BIN'] ?? 'promtool';
}

// ---------------------------------------------------------------------------------------
// Rule files

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };

/** Prometheus duration ("1h30m", "90s", "0s") in ms; undefined if it is not one. */
export function durationMs(d: string): number | undefined {
  if (d === '0') return 0;
  const re = /(\d+)(ms|s|m|h|d|w|y)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(d); m; m = re.exec(d)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === d.length && d.length > 0 ? total : undefined;
}

function checkDuration(d: string, what: string): void {
  if (durationMs(d) === undefined) throw new Error(`prometheus harness: ${what} '${d}' is not a Prometheus duration`);
}

/** Expands paths and globs to absolute file paths, in order, without repeats. */
function expandRuleFiles(patterns: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of patterns) {
    const abs = path.resolve(p);
    const files = /[*?[{]/.test(p) ? fs.globSync(abs).sort() : [abs];
    if (files.length === 0) throw new Error(`prometheus harness: rule file pattern ${p} matches nothing`);
    for (const f of files) {
      if (!fs.statSync(f).isFile()) throw new Error(`prometheus harness: rule file ${f} is not a file`);
      if (!out.includes(f)) out.push(f);
    }
  }
  return out;
}

/** Replaces a scalar duration at `key` when the override is shorter (cap). */
function capDuration(map: { get(k: string, keepScalar: true): unknown; set(k: string, v: unknown): void }, key: string, cap: string): void {
  const node = map.get(key, true);
  if (!isScalar(node)) return;
  const current = durationMs(String(node.value));
  if (current === undefined || current > durationMs(cap)!) map.set(key, cap);
}

/**
 * The rule file's text with the overrides applied (comments and layout kept by the yaml
 * Document API); also the alert names it defines.
 */
function rewriteRules(text: string, file: string, o: RuleOverrides): { text: string; alerts: string[] } {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new Error(`prometheus harness: ${file}: ${doc.errors[0]!.message}`);
  const alerts: string[] = [];
  const groups = doc.get('groups', true);
  if (!isSeq(groups)) return { text, alerts };
  for (const group of groups.items) {
    if (!isMap(group)) continue;
    if (o.groupIntervalOverride !== undefined) capDuration(group, 'interval', o.groupIntervalOverride);
    const rules = group.get('rules', true);
    if (!isSeq(rules)) continue;
    for (const rule of rules.items) {
      if (!isMap(rule)) continue;
      const name = rule.get('alert');
      if (typeof name !== 'string') continue;
      alerts.push(name);
      const f = o.forOverride;
      if (typeof f === 'string') capDuration(rule, 'for', f);
      else if (f !== undefined && Object.hasOwn(f, name)) rule.set('for', f[name]);
      if (o.keepFiringForOverride !== undefined) capDuration(rule, 'keep_firing_for', o.keepFiringForOverride);
    }
  }
  return { text: doc.toString(), alerts };
}

// ---------------------------------------------------------------------------------------
// Config

function scrapeConfigs(targets: readonly ScrapeTarget[]): Array<Record<string, unknown>> {
  const byJob = new Map<string, { key: string; config: Record<string, unknown>; statics: Array<Record<string, unknown>> }>();
  for (const t of targets) {
    const u = new URL(t.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`prometheus harness: scrape target ${t.job}: not an http(s) URL`);
    const params: Record<string, string[]> = {};
    for (const [k, v] of u.searchParams) (params[k] ??= []).push(v);
    const config: Record<string, unknown> = {
      job_name: t.job,
      scheme: u.protocol.slice(0, -1),
      metrics_path: u.pathname || '/',
    };
    if (Object.keys(params).length > 0) config['params'] = params;
    if (u.username) {
      config['basic_auth'] = { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
    }
    if (t.bearerToken !== undefined) config['authorization'] = { type: 'Bearer', credentials: t.bearerToken };
    const key = JSON.stringify(config);
    const statics = { targets: [u.host], ...(t.labels ? { labels: t.labels } : {}) };
    const existing = byJob.get(t.job);
    if (existing) {
      // Without this check the second target would silently be scraped with the first one's path or credentials.
      if (existing.key !== key) throw new Error(`prometheus harness: targets of job ${t.job} differ in scheme, path, params or credentials`);
      existing.statics.push(statics);
    } else {
      byJob.set(t.job, { key, config, statics: [statics] });
    }
  }
  return [...byJob.values()].map((j) => ({ ...j.config, static_configs: j.statics }));
}

function alertmanagerUrls(o: PrometheusOptions): URL[] {
  const list = o.alertmanagerUrl === undefined ? [] : Array.isArray(o.alertmanagerUrl) ? o.alertmanagerUrl : [o.alertmanagerUrl];
  return list.map((s) => new URL(s));
}

function buildConfig(o: PrometheusOptions, ruleFiles: readonly string[]): string {
  const interval = o.scrapeInterval ?? '1s';
  const config: Record<string, unknown> = {
    global: {
      scrape_interval: interval,
      scrape_timeout: interval,
      evaluation_interval: o.evaluationInterval ?? interval,
    },
    rule_files: [...ruleFiles],
    scrape_configs: scrapeConfigs(o.scrapeTargets),
  };
  const ams = alertmanagerUrls(o);
  if (ams.length > 0) {
    config['alerting'] = {
      alertmanagers: ams.map((u) => ({
        scheme: u.protocol.slice(0, -1),
        api_version: 'v2',
        ...(u.pathname !== '/' ? { path_prefix: u.pathname } : {}),
        static_configs: [{ targets: [u.host] }],
      })),
    };
  }
  const merged = mergeYamlConfig(config, o.extraConfig, 'prometheus harness');
  return '# written by test/harness/prometheus.ts\n' + stringify(merged);
}

// ---------------------------------------------------------------------------------------
// Server

interface ApiAnswer<T> {
  status: 'success' | 'error';
  data?: T;
  errorType?: string;
  error?: string;
}

class PrometheusImpl extends ServerLifecycle implements PrometheusServer {
  protected readonly kind = 'prometheus';
  port = 0;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly dataDir: string;
  readonly rulesDir: string;
  loadedRuleFiles: string[] = [];
  private opts: PrometheusOptions;

  constructor(dir: string, opts: PrometheusOptions) {
    super();
    this.dir = dir;
    this.opts = opts;
    this.configFile = path.join(dir, 'prometheus.yml');
    this.logFile = path.join(dir, 'prometheus.log');
    this.dataDir = path.join(dir, 'data');
    this.rulesDir = path.join(dir, 'rules');
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * Copies (and rewrites) the rule files, then writes prometheus.yml. Everything is read and
   * checked before the first file is written, so a bad option leaves the dir as it was.
   */
  writeConfig(o: PrometheusOptions = this.opts): void {
    if (o.scrapeInterval !== undefined) checkDuration(o.scrapeInterval, 'scrapeInterval');
    if (o.evaluationInterval !== undefined) checkDuration(o.evaluationInterval, 'evaluationInterval');
    if (typeof o.forOverride === 'string') checkDuration(o.forOverride, 'forOverride');
    else for (const [name, d] of Object.entries(o.forOverride ?? {})) checkDuration(d, `forOverride.${name}`);
    if (o.keepFiringForOverride !== undefined) checkDuration(o.keepFiringForOverride, 'keepFiringForOverride');
    if (o.groupIntervalOverride !== undefined) checkDuration(o.groupIntervalOverride, 'groupIntervalOverride');

    const seen = new Set<string>();
    const copies = expandRuleFiles(o.ruleFiles ?? []).map((src, i) => {
      const { text, alerts } = rewriteRules(fs.readFileSync(src, 'utf8'), src, o);
      for (const a of alerts) seen.add(a);
      return { file: path.join(this.rulesDir, `${String(i).padStart(2, '0')}-${path.basename(src)}`), text };
    });
    if (o.forOverride !== undefined && typeof o.forOverride !== 'string') {
      const unknown = Object.keys(o.forOverride).filter((n) => !seen.has(n));
      if (unknown.length > 0) throw new Error(`prometheus harness: forOverride names alerts no rule file defines: ${unknown.join(', ')}`);
    }
    const config = buildConfig(o, copies.map((c) => c.file));

    fs.rmSync(this.rulesDir, { recursive: true, force: true });
    fs.mkdirSync(this.rulesDir, { mode: 0o700 });
    for (const c of copies) writeOwnedFile(c.file, c.text, undefined, 0o644);
    this.loadedRuleFiles = copies.map((c) => c.file);
    writeOwnedFile(this.configFile, config, undefined, 0o600);
  }

  async launch(): Promise<void> {
    const args = [
      `--config.file=${this.configFile}`,
      `--storage.tsdb.path=${this.dataDir}`,
      `--web.listen-address=127.0.0.1:${this.port}`,
      // Alerts' generatorURL and the UI's links point here instead of http://<hostname>:9090.
      `--web.external-url=${this.url}/`,
      '--web.enable-lifecycle',
      ...(this.opts.resendDelay !== undefined ? [`--rules.alert.resend-delay=${this.opts.resendDelay}`] : []),
      ...(this.opts.extraArgs ?? []),
    ];
    await this.spawnUntilReady({
      name: `prometheus :${this.port}`,
      cmd: prometheusBin(),
      args,
      logFile: this.logFile,
      asOwner: undefined,
      stopSignal: 'SIGTERM',
      exitSignal: 'SIGTERM',
      cwd: this.dir,
    }, (proc) => waitFor(`prometheus on port ${this.port}`, proc, () => httpReady(this.url), { timeoutMs: READY_TIMEOUT_MS }));
  }

  async waitForTargets(timeoutMs = TARGETS_TIMEOUT_MS): Promise<void> {
    const proc = this.proc;
    if (!proc?.running) throw new Error(`prometheus on port ${this.port}: not running`);
    const wanted = this.opts.scrapeTargets.map((t) => ({ job: t.job, host: new URL(t.url).host }));
    const jobs = new Set(wanted.map((w) => w.job));
    const ams = alertmanagerUrls(this.opts).map((u) => u.host);
    await waitFor(`prometheus on port ${this.port}: targets discovered and scraped`, proc, async () => {
      const active = await this.targets();
      const ours = active.filter((t) => jobs.has(t.scrapePool));
      const scraped = wanted.every((w) =>
        ours.some((t) => t.scrapePool === w.job && new URL(t.scrapeUrl).host === w.host && t.health !== 'unknown'),
      );
      // After a reload that removed targets, the old ones must be gone too.
      const noStale = ours.length === wanted.length;
      if (!scraped || !noStale) return undefined;
      if (ams.length > 0) {
        const d = await this.api<{ activeAlertmanagers: Array<{ url: string }> }>('/api/v1/alertmanagers');
        const hosts = d.activeAlertmanagers.map((a) => new URL(a.url).host);
        if (!ams.every((h) => hosts.includes(h))) return undefined;
      }
      return true;
    }, { timeoutMs, intervalMs: 100 });
  }

  private async api<T>(p: string, form?: Record<string, string>): Promise<T> {
    const res = await fetch(`${this.url}${p}`, {
      method: form ? 'POST' : 'GET',
      ...(form ? { body: new URLSearchParams(form) } : {}),
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
    const text = await res.text();
    let body: ApiAnswer<T>;
    try {
      body = JSON.parse(text) as ApiAnswer<T>;
    } catch {
      throw new Error(`prometheus ${p}: HTTP ${res.status}: ${text.slice(0, 300)}`);
    }
    if (body.status !== 'success' || body.data === undefined) {
      throw new Error(`prometheus ${p}: HTTP ${res.status}: ${body.errorType ?? 'error'}: ${body.error ?? text.slice(0, 300)}`);
    }
    return body.data;
  }

  queryRaw(promql: string, time?: number): Promise<QueryResult> {
    return this.api<QueryResult>('/api/v1/query', { query: promql, ...(time !== undefined ? { time: String(time / 1000) } : {}) });
  }

  async query(promql: string, time?: number): Promise<Sample[]> {
    const r = await this.queryRaw(promql, time);
    if (r.resultType !== 'vector') throw new Error(`prometheus query ${promql}: result is a ${r.resultType}, not an instant vector`);
    return r.result;
  }

  async queryRange(promql: string, range: { start: number; end: number; step: number }): Promise<RangeSeries[]> {
    const r = await this.api<QueryResult>('/api/v1/query_range', {
      query: promql,
      start: String(range.start / 1000),
      end: String(range.end / 1000),
      step: String(range.step),
    });
    if (r.resultType !== 'matrix') throw new Error(`prometheus query_range ${promql}: result is a ${r.resultType}`);
    return r.result;
  }

  async alerts(): Promise<PromAlert[]> {
    return (await this.api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts;
  }

  async rules(): Promise<RuleGroupStatus[]> {
    return (await this.api<{ groups: RuleGroupStatus[] }>('/api/v1/rules')).groups;
  }

  async targets(): Promise<ActiveTarget[]> {
    return (await this.api<{ activeTargets: ActiveTarget[] }>('/api/v1/targets?state=active')).activeTargets;
  }

  async reload(changes: Partial<PrometheusOptions> = {}): Promise<void> {
    if (!this.proc?.running) throw new Error(`prometheus on port ${this.port}: reload() while not running`);
    const next = { ...this.opts, ...changes };
    this.writeConfig(next);
    const logFrom = fs.statSync(this.logFile).size;
    const res = await fetch(`${this.url}/-/reload`, { method: 'POST', signal: AbortSignal.timeout(API_TIMEOUT_MS) });
    const text = await res.text();
    if (!res.ok) {
      // The answer only says "one or more errors occurred"; the reasons are in the log.
      const reasons = logTail(this.logFile, 20, logFrom)
        .split('\n')
        .filter((l) => l.includes('level=error'));
      // Prometheus keeps running what it had; so do our options (the files hold the refused version).
      throw new Error(`prometheus on port ${this.port}: reload refused (HTTP ${res.status}): ${text.trim()}\n${reasons.join('\n')}`);
    }
    this.opts = next;
    if (this.opts.waitForTargets !== false) await this.waitForTargets();
  }

  checkConfig(): Promise<string> {
    return runTool(promtoolBin(), ['check', 'config', this.configFile], { asOwner: undefined, timeoutMs: 30_000 });
  }

  protected override async afterStart(): Promise<void> {
    if (this.opts.waitForTargets !== false) await this.waitForTargets();
  }
}

export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusServer> {
  const p = new PrometheusImpl(makeTempDir('hk-prometheus-', undefined), { ...opts });
  return startOrDestroy(p, async () => {
    await launchOnFreePort(p, async () => {
      p.writeConfig();
      await p.launch();
    });
    if (opts.waitForTargets !== false) await p.waitForTargets();
  });
}
