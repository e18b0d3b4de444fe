import { PgBoss, type Job } from 'pg-boss';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { ActionContext } from '../actions/action.ts';
import * as sql from '../sql/state.ts';
import { BatchStore } from './batch-store.ts';
import { Executor } from './execute.ts';
import { FollowUps } from './followups.ts';
import { budgetGate } from './gates/budget.ts';
import { circuitGate } from './gates/circuit.ts';
import { cooldownGate } from './gates/cooldown.ts';
import { sequence, type Gate } from './gates/gate.ts';
import { orphanGate } from './gates/orphan.ts';
import { planGate } from './gates/plan.ts';
import { resolvedGate } from './gates/resolved.ts';
import { windowGate } from './gates/window.ts';
import type { Annotator } from './grafana.ts';
import { Intake } from './intake.ts';
import { QUEUE, type AlertIn, type AlertResult, type JobData } from './jobs.ts';
import { Journal } from './journal.ts';
import type { RemediationMetrics } from './metrics.ts';
import type { Rule } from './rules.ts';
import { entry, type Run } from './run.ts';
import { Scheduler } from './schedule.ts';
import type { StateDb } from './state.ts';

interface EngineDeps {
  config: Config;
  state: StateDb;
  rules: readonly Rule[];
  ctx: ActionContext;
  log: Logger;
  metrics: RemediationMetrics;
  annotator: Annotator | undefined;
}

/** Completed jobs are kept this long: the horizon over which a repeat is recognised. */
const DEDUPE_HORIZON_S = 30 * 86_400;

/**
 * Alert → durable job (Intake) → gates → run → verify → log. Jobs live in pg-boss on the
 * state database. A job passes its gates in order, each of which may end it (recorded as
 * skipped or dry_run), defer it (a continuation job, later) or fail it; one that passes all
 * of them runs (Executor). The order is the runbook's: nothing is planned for an alert that
 * resolved or a rule whose circuit is open, and nothing spends budget before it is due.
 */
export class Engine {
  readonly boss: PgBoss;
  private readonly d: EngineDeps;
  private readonly journal: Journal;
  private readonly followUps: FollowUps;
  private readonly executor: Executor;
  private readonly intake: Intake;
  private readonly scheduler: Scheduler;
  private readonly gates: Gate;
  private readonly running = new Map<string, AbortController>();
  private timer: NodeJS.Timeout | undefined;
  private scheduleTimer: NodeJS.Timeout | undefined;

  constructor(d: EngineDeps) {
    this.d = d;
    const { config, state, rules, log } = d;
    const boss = new PgBoss({ ...state.boss, schema: 'housekeeper_queue', supervise: true, schedule: false });
    boss.on('error', (err: unknown) => log.error({ err }, 'queue error'));
    this.boss = boss;
    const journal = new Journal({ state, log, metrics: d.metrics, annotator: d.annotator, replica: config.remediation.replicaName });
    const followUps = new FollowUps({ boss, state, config, log, journal });
    this.journal = journal;
    this.followUps = followUps;
    this.executor = new Executor({ config, state, ctx: d.ctx, log, metrics: d.metrics, journal, followUps, running: this.running });
    this.intake = new Intake({ config, state, rules, boss, store: new BatchStore(boss, state), journal, log, running: this.running });
    this.scheduler = new Scheduler({ config, rules, boss, log });
    this.gates = sequence('remediation', [
      orphanGate(state),
      resolvedGate(state),
      circuitGate(state, config.remediation.circuit),
      windowGate(),
      cooldownGate(state),
      planGate(d.ctx, config.remediation.dryRun),
      budgetGate(state, journal, config.remediation.budget),
    ]);
  }

  /** Starts the queue. Workers start separately (startWorkers), after the HTTP server. */
  async start(): Promise<void> {
    await this.boss.start();
    await this.boss.createQueue(QUEUE, {
      policy: 'standard',
      // One retry, only for a replica that died mid-job (the job expires and comes back);
      // our own retries are continuation jobs, so they can be named and cancelled.
      retryLimit: 1,
      retryDelay: 5,
      // A job running longer than this is taken back (its replica is presumed dead).
      expireInSeconds: Math.ceil(this.d.config.remediation.actionTimeoutMs / 1000),
      retentionSeconds: Math.ceil(this.d.config.remediation.jobTtlMs / 1000),
      deleteAfterSeconds: DEDUPE_HORIZON_S,
    });
  }

  async startWorkers(): Promise<void> {
    await this.boss.work<JobData>(
      QUEUE,
      {
        localConcurrency: this.d.config.remediation.concurrency,
        // One action at a time per target, across every replica.
        groupConcurrency: 1,
        pollingIntervalSeconds: 0.5,
      },
      async (jobs: Job<JobData>[]) => {
        for (const job of jobs) await this.handle(job);
      },
    );
    const tick = (): void => void this.scheduleTick().catch((err: unknown) => this.d.log.warn({ err }, 'schedule tick failed; retried next tick'));
    tick();
    this.scheduleTimer = setInterval(tick, 5_000);
    this.scheduleTimer.unref();
    const refresh = (): void => void this.refreshGauges().catch((err: unknown) => this.d.log.debug({ err }, 'gauge refresh failed'));
    refresh();
    this.timer = setInterval(refresh, 5_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.scheduleTimer);
    for (const c of this.running.values()) c.abort(new Error('shutting down'));
    await this.boss.stop({ graceful: true, timeout: 10_000 });
  }

  rulesFor(labels: Record<string, string>): Rule[] {
    return this.intake.rulesFor(labels);
  }

  /** Stores the jobs for one alert, once per matching rule (or cancels them if it resolved). Throws if it could not. */
  accept(alert: AlertIn): Promise<AlertResult[]> {
    return this.intake.accept(alert);
  }

  /** A resolved alert cancels its jobs that have not started. Returns one result per rule. */
  resolve(alert: AlertIn): Promise<AlertResult[]> {
    return this.intake.resolve(alert);
  }

  /** Enqueues every scheduled run due since the last tick; returns how many it created. */
  scheduleTick(now = new Date()): Promise<number> {
    return this.scheduler.tick(now);
  }

  /** Runs one job: its gates first, then the action, or what the gate that stopped it decided. */
  async handle(job: Job<JobData>): Promise<void> {
    const rule = this.d.rules.find((r) => r.name === job.data.rule);
    if (!rule) return this.followUps.handBack(job.data);
    const run: Run = { jobId: job.id, data: job.data, rule };
    const verdict = await this.gates.check(run);
    switch (verdict.kind) {
      case 'continue':
        return this.executor.execute(verdict.run);
      case 'record':
        await this.journal.record(entry(run, { outcome: verdict.outcome, reason: verdict.reason, plan: verdict.plan }));
        return;
      case 'defer':
        return this.followUps.defer(run, verdict.until, verdict.reason);
      case 'fail':
        return this.executor.fail(run, verdict.error, 0);
    }
  }

  private async refreshGauges(): Promise<void> {
    const [stats] = await this.boss.getQueueStats(QUEUE);
    if (stats) {
      this.d.metrics.queue.set({ state: 'queued' }, stats.readyCount);
      this.d.metrics.queue.set({ state: 'deferred' }, stats.deferredCount);
      this.d.metrics.queue.set({ state: 'active' }, stats.activeCount);
    }
    const circuits = await this.d.state.query<{ rule: string; open: boolean }>(sql.ALL_CIRCUITS);
    for (const r of this.d.rules) this.d.metrics.circuitOpen.set({ rule: r.name }, circuits.find((c) => c.rule === r.name)?.open ? 1 : 0);
  }
}
