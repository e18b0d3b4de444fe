import type { Gauge, Registry } from 'prom-client';
import type { Config } from '../config.ts';
import { scrubText, type Logger } from '../log.ts';
import { MetricFactory, type Family } from '../metrics/registry.ts';
import { setGauge } from '../metrics/store.ts';
import type { Targets } from '../targets/index.ts';
import type { AnyCollector, LabelValues } from './collector.ts';

interface Staged {
  metric: Family;
  labels: LabelValues;
  value: number;
}

interface Job {
  collector: string;
  target: { readonly name: string };
  metrics: unknown;
  up: Gauge<string> | undefined;
  families: Family[];
  /** Every family the collector declared (histograms too), for /probe's output. */
  familyNames: string[];
  run: AnyCollector['collect'];
  /** Set while a collection of this target is still running, even past its deadline. */
  busy: Promise<void> | undefined;
  /** Outcome of the previous collection, so failures are logged when they start and stop. */
  lastOk: boolean | undefined;
  lastWarnAt: number;
  /** Why the previous collection failed (secret-free, one line), for `housekeeper check`. */
  lastFailure: string | undefined;
  /** The last finished collection, republished whenever any target's collection lands. */
  last: Outcome | undefined;
}

interface Outcome {
  job: Job;
  ok: boolean;
  seconds: number;
  samples: Staged[];
}

/** The runner's own families (node_exporter's scrape_collector_* under our prefix). */
export function declareRunnerMetrics(f: MetricFactory): { success: Gauge<string>; duration: Gauge<string> } {
  return {
    success: f.gauge(
      'housekeeper_collector_success',
      'Whether the last collection of this collector for this target succeeded (1) or failed or timed out (0).',
      ['collector', 'target'],
    ),
    duration: f.gauge('housekeeper_collector_duration_seconds', 'How long the last collection of this collector for this target took.', ['collector', 'target']),
  };
}

/** Waits for work, but no longer than ms. */
async function within(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs every enabled collector against each of its targets concurrently, each under the
 * scrape's deadline, and publishes the results into the registry in one synchronous step.
 * Concurrent scrapes share the collection in flight, per target: a /probe of one target and
 * a full /metrics collection share that target's collection too. A target whose previous
 * collection has not finished (a hung server) is reported failed rather than queried again,
 * so a hung server cannot pile up connections.
 */
export class CollectorRunner {
  private readonly jobs: Job[] = [];
  private readonly families: Family[] = [];
  private readonly success: Gauge<string>;
  private readonly duration: Gauge<string>;
  private inFlight: Promise<void> | undefined;
  /** Per target name: the collection in flight that will publish it. */
  private readonly running = new Map<string, Promise<void>>();
  private generation = 0;

  private readonly config: Config;
  private readonly log: Logger;
  private readonly collectors: { collector: AnyCollector; targets: readonly { readonly name: string }[] }[] = [];
  private readonly probeFamilyNames = new Map<string, string[]>();
  private readonly filledFamilyNames: ReadonlySet<string>;

  constructor(collectors: readonly AnyCollector[], targets: Targets, config: Config, registry: Registry, log: Logger) {
    this.config = config;
    this.log = log;
    const ownFactory = new MetricFactory(registry, false);
    const own = declareRunnerMetrics(ownFactory);
    const ownNames = ownFactory.declared.map((d) => d.name);
    this.success = own.success;
    this.duration = own.duration;
    for (const c of collectors) {
      const on = config.collectors.enabled.includes(c.name) || (c.enabledByDefault && !config.collectors.disabled.includes(c.name));
      if (!on) continue;
      const mine = c.targets(targets, config);
      // Nothing configured for it (no Elasticsearch, say): no families at all, not empty ones
      // rendered on every scrape and held in memory.
      if (mine.length === 0) continue;
      this.collectors.push({ collector: c, targets: mine });
      const f = new MetricFactory(registry, true);
      const metrics = c.metrics(f);
      this.families.push(...f.families);
      for (const target of mine) {
        this.jobs.push({
          collector: c.name,
          target,
          metrics,
          up: c.up?.(metrics),
          families: f.families,
          familyNames: f.declared.map((d) => d.name),
          run: c.collect.bind(c),
          busy: undefined,
          lastOk: undefined,
          lastWarnAt: 0,
          lastFailure: undefined,
          last: undefined,
        });
      }
    }
    // What /probe and /metrics?collect=none render: fixed once the jobs are known.
    for (const name of new Set(this.jobs.map((j) => j.target.name))) {
      const jobs = this.jobs.filter((j) => j.target.name === name);
      this.probeFamilyNames.set(name, [...new Set([...jobs.flatMap((j) => j.familyNames), ...ownNames])]);
    }
    this.filledFamilyNames = new Set([...this.jobs.flatMap((j) => j.familyNames), ...ownNames]);
  }

  /** Stops every collector's background work (checker processes, loops). */
  async close(): Promise<void> {
    await Promise.allSettled(this.collectors.map(({ collector, targets }) => collector.close?.(targets)));
  }

  /** Number of completed collections; tests and the render cache use it. */
  get completed(): number {
    return this.generation;
  }

  /** The collections whose last run failed, and why (secret-free), for `housekeeper check`. */
  failures(): Array<{ collector: string; target: string; reason: string }> {
    return this.jobs.filter((j) => j.lastOk === false).map((j) => ({ collector: j.collector, target: j.target.name, reason: j.lastFailure ?? 'failed' }));
  }

  /** The configured target names, each served by /probe. */
  targetNames(): string[] {
    return [...this.probeFamilyNames.keys()];
  }

  /**
   * The families /probe renders for a target: those of the collectors that collect it, and
   * the runner's success/duration. Undefined for a name no collector has.
   */
  probeFamilies(target: string): readonly string[] | undefined {
    return this.probeFamilyNames.get(target);
  }

  /** Every family the runner fills (collectors' and its own), which /metrics?collect=none leaves out. */
  targetFamilies(): ReadonlySet<string> {
    return this.filledFamilyNames;
  }

  /**
   * Collects everything, finishing within deadlineMs. A scrape arriving while a collection
   * is in flight waits for that one (up to its own deadline) instead of starting another.
   */
  async collect(deadlineMs: number): Promise<void> {
    if (this.inFlight === undefined) {
      this.inFlight = this.runTargets(this.targetNames(), deadlineMs)
        .then(() => {
          // Counts even when nothing ran (no targets, or all joined), so the render is fresh.
          this.generation++;
        })
        .finally(() => {
          this.inFlight = undefined;
        });
      return this.inFlight;
    }
    await within(this.inFlight, deadlineMs);
  }

  /** Collects one target's collectors (for /probe), sharing a collection of it in flight. */
  async collectTarget(target: string, deadlineMs: number): Promise<void> {
    await this.runTargets([target], deadlineMs);
  }

  /**
   * Starts a collection of the targets that have none in flight and waits (up to the
   * deadline) for those that do; the fresh ones are published together in one step.
   */
  private async runTargets(names: readonly string[], deadlineMs: number): Promise<void> {
    const joined = names.flatMap((n) => this.running.get(n) ?? []);
    const fresh = names.filter((n) => !this.running.has(n));
    const run = fresh.length === 0 ? undefined : this.runFresh(fresh, deadlineMs);
    await Promise.all([run, joined.length === 0 ? undefined : within(Promise.all(joined), deadlineMs)]);
  }

  private runFresh(names: readonly string[], deadlineMs: number): Promise<void> {
    const jobs = this.jobs.filter((j) => names.includes(j.target.name));
    const run = Promise.all(jobs.map((job) => this.runOne(job, deadlineMs))).then((outcomes) => {
      this.publish(outcomes);
      this.generation++;
    });
    const done = run.finally(() => {
      for (const n of names) if (this.running.get(n) === run) this.running.delete(n);
    });
    for (const n of names) this.running.set(n, run);
    return done;
  }

  private async runOne(job: Job, deadlineMs: number): Promise<Outcome> {
    const started = performance.now();
    const elapsed = (): number => (performance.now() - started) / 1000;
    const where = { collector: job.collector, target: job.target.name };
    if (job.busy !== undefined) {
      this.failed(job, { ...where }, 'previous collection still running; target reported down', 'the previous collection is still running');
      return { job, ok: false, seconds: 0, samples: [] };
    }
    const samples: Staged[] = [];
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), deadlineMs);
    });
    const work = job.run(
      {
        target: job.target,
        signal: controller.signal,
        log: this.log,
        set: (metric, labels, value) => {
          samples.push({ metric, labels: { target: job.target.name, ...labels }, value });
        },
      },
      job.metrics,
      this.config,
    );
    const busy = work.then(
      () => undefined,
      () => undefined,
    );
    job.busy = busy;
    void busy.then(() => {
      if (job.busy === busy) job.busy = undefined;
    });
    try {
      const result = await Promise.race([work.then(() => 'done' as const), timedOut]);
      if (result === 'timeout') {
        controller.abort(new Error(`collection deadline of ${deadlineMs} ms passed`));
        this.failed(job, { ...where, deadlineMs }, 'collection timed out', `timed out after ${deadlineMs} ms`);
        return { job, ok: false, seconds: elapsed(), samples: [] };
      }
      if (job.lastOk === false) this.log.info(where, 'collection recovered');
      job.lastFailure = undefined;
      job.lastOk = true;
      return { job, ok: true, seconds: elapsed(), samples };
    } catch (err) {
      controller.abort(err);
      this.failed(job, { ...where, err }, 'collection failed', err instanceof Error ? err.message : String(err));
      return { job, ok: false, seconds: elapsed(), samples: [] };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Logs a failure at warn when a target goes bad and then every 5 minutes while it stays
   * bad; the repeats in between go to debug. The metrics say it on every scrape anyway.
   */
  private failed(job: Job, fields: Record<string, unknown>, msg: string, reason: string): void {
    job.lastFailure = scrubText(reason.split('\n')[0] ?? '').slice(0, 300);
    const now = Date.now();
    if (job.lastOk !== false || now - job.lastWarnAt > 300_000) {
      job.lastWarnAt = now;
      this.log.warn(fields, msg);
    } else {
      this.log.debug(fields, msg);
    }
    job.lastOk = false;
  }

  /**
   * Records the fresh outcomes and replaces every collector family's content at once from
   * every target's last outcome, so label sets that vanished vanish and a one-target
   * collection leaves the others' series as they were.
   */
  private publish(fresh: Outcome[]): void {
    for (const o of fresh) o.job.last = o;
    for (const f of this.families) f.reset();
    this.success.reset();
    this.duration.reset();
    for (const { last } of this.jobs) {
      if (last === undefined) continue;
      const { job, ok, seconds, samples } = last;
      const labels = { collector: job.collector, target: job.target.name };
      this.success.set(labels, ok ? 1 : 0);
      this.duration.set(labels, seconds);
      if (ok) {
        for (const s of samples) {
          if ('inc' in s.metric && !('set' in s.metric)) s.metric.inc(s.labels, s.value);
          else setGauge(s.metric as Gauge<string>, s.labels, s.value);
        }
      }
      job.up?.set({ target: job.target.name }, ok ? 1 : 0);
    }
  }
}
