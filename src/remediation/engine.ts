import { PgBoss, type Job, type JobInsert } from 'pg-boss';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { AnyAction, ActionContext } from '../actions/action.ts';
import * as sql from '../sql/state.ts';
import { uuidFor } from '../util/uuid.ts';
import type { StateDb } from './state.ts';
import type { RemediationMetrics } from './metrics.ts';
import { paramsFor, ruleMatches, type Rule } from './rules.ts';
import { inAnyWindow, type Window } from './windows.ts';
import type { Annotator } from './grafana.ts';

export const QUEUE = 'housekeeper-remediation';

/** One alert as Alertmanager sends it (payload version 4). */
export interface AlertIn {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  fingerprint: string;
}

/** What a job carries. Params were rendered from labels and validated when it was queued. */
export interface JobData {
  trigger: 'alert' | 'schedule';
  episode: string;
  rule: string;
  alertname: string;
  fingerprint: string;
  startsAt: string;
  params: Record<string, unknown>;
  target: string;
  /** Real runs so far + 1. */
  attempt: number;
  /** Continuations so far (deferrals and retries), for their ids. */
  seq: number;
  /** When a replica that does not know the rule first handed the job back (ISO time). */
  handedBackAt?: string;
}

export type Outcome = 'fixed' | 'not_fixed' | 'failed' | 'skipped' | 'deferred' | 'dry_run';

export type AlertResult = 'queued' | 'duplicate' | 'unmatched' | 'cancelled' | 'resolved' | 'invalid_params';

interface EngineDeps {
  config: Config;
  state: StateDb;
  rules: readonly Rule[];
  ctx: ActionContext;
  log: Logger;
  metrics: RemediationMetrics;
  annotator: Annotator | undefined;
}

/** An alert's job and episode waiting for the next batched store; settled once it commits. */
interface PendingStore {
  job: JobInsert<JobData> & { id: string };
  episode: { episode: string; rule: string; alertname: string; fingerprint: string; starts_at: string; target: string; labels: Record<string, string> };
  resolve(inserted: boolean): void;
  reject(err: unknown): void;
}

/** Stores in flight at once, and alerts per store; more wait for the next. */
const STORE_IN_FLIGHT = 2;
const STORE_BATCH_MAX = 500;

/** A replica (re)starting up to this long after a scheduled time still enqueues that run. */
const SCHEDULE_CATCH_UP_MS = 10 * 60_000;
/** How soon a job this replica cannot run (its rule is unknown here) is offered again. */
const HAND_BACK_MS = 5_000;
/** Completed jobs are kept this long: the horizon over which a repeat is recognised. */
const DEDUPE_HORIZON_S = 30 * 86_400;

/**
 * Alert → durable job → checks → plan → run → verify → log. Jobs live in pg-boss on the
 * state database; their ids are derived from (rule, fingerprint, startsAt), so every replica
 * and every repeat of a notification names the same job and it is stored, and run, once.
 */
export class Engine {
  readonly boss: PgBoss;
  private readonly d: EngineDeps;
  private readonly replica: string;
  private timer: NodeJS.Timeout | undefined;
  private scheduleTimer: NodeJS.Timeout | undefined;
  /** Schedules are due in (lastTick, now]; a restart looks back SCHEDULE_CATCH_UP_MS. */
  private lastTick = new Date(Date.now() - SCHEDULE_CATCH_UP_MS);
  private firstTick = true;
  private readonly running = new Map<string, AbortController>();
  private readonly pending: PendingStore[] = [];
  private storesInFlight = 0;
  private storeScheduled = false;

  constructor(d: EngineDeps) {
    this.d = d;
    this.replica = d.config.remediation.replicaName;
    this.boss = new PgBoss({ ...d.state.boss, schema: 'housekeeper_queue', supervise: true, schedule: false });
    this.boss.on('error', (err: unknown) => d.log.error({ err }, 'queue error'));
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
    return this.d.rules.filter((r) => ruleMatches(r, labels));
  }

  /** Stores the jobs for one firing alert, once per matching rule. Throws if it could not. */
  async accept(alert: AlertIn): Promise<AlertResult[]> {
    const rules = this.rulesFor(alert.labels);
    if (rules.length === 0) return ['unmatched'];
    const results: AlertResult[] = [];
    for (const rule of rules) {
      if (alert.status === 'resolved') {
        results.push(...(await this.resolve(alert)));
        break;
      }
      results.push(await this.enqueue(rule, alert));
    }
    return results;
  }

  private async enqueue(rule: Rule, alert: AlertIn): Promise<AlertResult> {
    let params: Record<string, unknown>;
    try {
      params = paramsFor(rule, alert.labels);
    } catch (err) {
      // A label value that does not fit the action's schema never reaches the action.
      await this.record({
        trigger: 'alert', rule, target: '', alert, params: undefined, outcome: 'skipped',
        reason: `invalid params: ${(err as Error).message}`, episode: undefined, jobId: undefined, attempt: 0,
      });
      return 'invalid_params';
    }
    const startsAt = new Date(alert.startsAt);
    const episode = uuidFor(`${rule.name}\u0000${alert.fingerprint}\u0000${startsAt.toISOString()}`);
    const target = rule.action.targetKey(params as never, this.d.config);
    const data: JobData = {
      trigger: 'alert', episode, rule: rule.name, alertname: alert.labels['alertname'] ?? '', fingerprint: alert.fingerprint,
      startsAt: startsAt.toISOString(), params, target, attempt: 1, seq: 0,
    };
    const inserted = await this.store(
      {
        id: episode,
        data,
        startAfter: new Date(Date.now() + rule.delayMs).toISOString(),
        group: { id: target },
        retentionSeconds: Math.ceil((rule.delayMs + this.d.config.remediation.jobTtlMs) / 1000),
      },
      { episode, rule: rule.name, alertname: data.alertname, fingerprint: alert.fingerprint, starts_at: data.startsAt, target, labels: alert.labels },
    );
    return inserted ? 'queued' : 'duplicate';
  }

  /**
   * Group commit: the jobs and episodes of the alerts accepted while a store is in flight are
   * written together, one pg-boss insert and one episode insert per batch, rather than two
   * statements (two commits) per alert. Each caller still waits for its own batch's commit,
   * so the webhook answers 202 only once its jobs are stored. Resolves true if this call
   * inserted the job, false if the id already existed (a repeat or an HA duplicate).
   */
  private store(job: PendingStore['job'], episode: PendingStore['episode']): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ job, episode, resolve, reject });
      this.scheduleStore();
    });
  }

  private scheduleStore(): void {
    if (this.storeScheduled || this.pending.length === 0 || this.storesInFlight >= STORE_IN_FLIGHT) return;
    this.storeScheduled = true;
    // After this turn's I/O callbacks, so that requests read together are stored together.
    setImmediate(() => {
      this.storeScheduled = false;
      while (this.pending.length > 0 && this.storesInFlight < STORE_IN_FLIGHT) {
        const batch = this.pending.splice(0, STORE_BATCH_MAX);
        this.storesInFlight++;
        void this.storeBatch(batch).finally(() => {
          this.storesInFlight--;
          this.scheduleStore();
        });
      }
    });
  }

  private async storeBatch(batch: readonly PendingStore[]): Promise<void> {
    // One row per id (two deliveries of one episode can meet in a batch), in id order, so that
    // concurrent batches, here or on other replicas, lock the rows they share in the same order.
    const first = new Map<string, PendingStore>();
    for (const p of batch) if (!first.has(p.job.id)) first.set(p.job.id, p);
    const unique = [...first.values()].sort((a, b) => (a.job.id < b.job.id ? -1 : a.job.id > b.job.id ? 1 : 0));
    try {
      const ids = await this.boss.insert(QUEUE, unique.map((p) => p.job), { returnId: true });
      await this.d.state.query(sql.INSERT_EPISODES, [JSON.stringify(unique.map((p) => p.episode))]);
      const inserted = new Set(ids ?? []);
      for (const p of batch) p.resolve(first.get(p.job.id) === p && inserted.has(p.job.id));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }

  /** A resolved alert cancels its jobs that have not started. Returns one result per rule. */
  async resolve(alert: AlertIn): Promise<AlertResult[]> {
    const rows = await this.d.state.query<{ episode: string; current_job: string; rule: string }>(sql.RESOLVE_EPISODES, [
      alert.fingerprint,
      new Date(alert.startsAt),
    ]);
    for (const r of rows) {
      await this.boss.cancel(QUEUE, r.current_job).catch((err: unknown) => this.d.log.debug({ err }, 'cancel: job not cancellable'));
      this.running.get(r.current_job)?.abort(new Error('alert resolved'));
    }
    return rows.length > 0 ? rows.map(() => 'cancelled' as const) : ['resolved'];
  }

  /**
   * Enqueues every scheduled run due since the last tick. Each run's job id is derived from
   * (schedule, scheduled time), so however many replicas tick, and however often one restarts
   * around that time, each scheduled time runs once.
   */
  async scheduleTick(now = new Date()): Promise<number> {
    const from = this.lastTick;
    let sent = 0;
    for (const rule of this.d.rules) {
      if (rule.kind !== 'schedule' || !rule.cron) continue;
      // The same defaults and checks as an alert's params, so a run and its log entry look
      // the same whatever triggered it (the rule was checked at boot: this does not throw).
      const params = paramsFor(rule, {});
      let due: Date[] = [];
      for (let t = rule.cron.next(from); t !== null && t <= now && due.length < 1000; t = rule.cron.next(t)) due.push(t);
      // After a (re)start, only the latest run missed while no replica ticked is caught up.
      if (this.firstTick) due = due.slice(-1);
      for (const t of due) {
        const id = uuidFor(`schedule\u0000${rule.name}\u0000${t.toISOString()}`);
        const data: JobData = {
          trigger: 'schedule', episode: id, rule: rule.name, alertname: '', fingerprint: '', startsAt: t.toISOString(),
          params, target: rule.action.targetKey(params as never, this.d.config), attempt: 1, seq: 0,
        };
        const created = await this.boss.send(QUEUE, data, {
          id,
          group: { id: data.target },
          retentionSeconds: Math.ceil(this.d.config.remediation.jobTtlMs / 1000),
        });
        if (created !== null) {
          sent++;
          this.d.log.info({ schedule: rule.name, at: t.toISOString() }, 'scheduled run queued');
        }
      }
    }
    this.lastTick = now;
    this.firstTick = false;
    return sent;
  }

  /** Runs one job: every check first, then plan, run, verify, and the record of it. */
  async handle(job: Job<JobData>): Promise<void> {
    const data = job.data;
    const rule = this.d.rules.find((r) => r.name === data.rule);
    if (!rule) {
      await this.handBack(data);
      return;
    }
    const base = { trigger: data.trigger, rule, target: data.target, params: data.params, episode: data.episode, jobId: job.id, attempt: data.attempt, alert: data };

    // A replica died while running this job: say so, then run it again if that is safe.
    const orphans = await this.d.state.query<{ id: string }>(sql.RUNNING_FOR_JOB, [job.id]);
    for (const o of orphans) {
      await this.d.state.query(sql.FINISH_LOG, [o.id, 'failed', 'interrupted', 'the replica running it stopped', null]);
    }
    if (orphans.length > 0 && !rule.action.idempotent) {
      await this.record({ ...base, outcome: 'skipped', reason: 'interrupted run of a non-idempotent action is not repeated' });
      return;
    }

    if (data.trigger === 'alert') {
      const [ep] = await this.d.state.query<{ status: string }>(sql.GET_EPISODE, [data.episode]);
      if (ep?.status === 'resolved') {
        await this.record({ ...base, outcome: 'skipped', reason: 'alert resolved before the job ran' });
        return;
      }
    }

    const circuit = this.d.config.remediation.circuit;
    await this.d.state.query(sql.CIRCUIT_HALF_OPEN, [rule.name, circuit.failures, circuit.resetAfterMs / 1000]);
    const [c] = await this.d.state.query<{ open: boolean }>(sql.GET_CIRCUIT, [rule.name]);
    if (c?.open) {
      await this.record({ ...base, outcome: 'skipped', reason: 'circuit open: repeated failures; a human must look' });
      return;
    }

    const now = new Date();
    if (rule.windows.length > 0 && !inAnyWindow(rule.windows, now)) {
      if (rule.outsideWindow === 'skip') {
        await this.record({ ...base, outcome: 'skipped', reason: 'outside its maintenance windows' });
        return;
      }
      const next = nextWindowStart(rule.windows, now);
      if (!next) {
        await this.record({ ...base, outcome: 'skipped', reason: 'no maintenance window in the next 8 days' });
        return;
      }
      await this.continueAt(job, data, rule, next, 'deferred', `outside its maintenance windows; waits for ${next.toISOString()}`, false);
      return;
    }

    const [last] = await this.d.state.query<{ at: Date | null }>(sql.LAST_RUN, [rule.name, data.target]);
    if (data.trigger === 'alert' && last?.at && now.getTime() - new Date(last.at).getTime() < rule.cooldownMs && data.seq === 0) {
      const until = new Date(new Date(last.at).getTime() + rule.cooldownMs);
      await this.continueAt(job, data, rule, until, 'deferred', `cooldown of ${rule.name} on ${data.target} until ${until.toISOString()}`, false);
      return;
    }

    const dryRun = this.d.config.remediation.dryRun || rule.dryRun;
    const action = rule.action;
    let plan;
    try {
      plan = await action.plan(this.d.ctx, data.params as never);
    } catch (err) {
      await this.finishFailure(job, data, rule, base, undefined, err, 0);
      return;
    }
    if (dryRun) {
      await this.record({ ...base, plan, outcome: 'dry_run', reason: `dry run: ${plan.summary}` });
      return;
    }
    if (plan.nothingToDo) {
      await this.record({ ...base, plan, outcome: 'skipped', reason: `nothing to do: ${plan.summary}` });
      return;
    }

    // The budget guards against alert storms (the runbook's calendar is not one). Checking it
    // and recording the start of the run happen under one lock, so replicas cannot overspend.
    const budget = this.d.config.remediation.budget;
    const reserved = await this.d.state.transaction<{ until: Date } | { logId: string }>(async (q) => {
      if (data.trigger === 'alert') {
        await q(sql.BUDGET_LOCK);
        const [b] = await q<{ n: number; oldest: Date | null }>(sql.RUNS_SINCE, [new Date(Date.now() - budget.perMs)]);
        if (b && b.n >= budget.maxActions) return { until: new Date(new Date(b.oldest ?? Date.now()).getTime() + budget.perMs) };
      }
      const [row] = await q<{ id: string }>(sql.INSERT_LOG, this.logValues({ ...base, plan, outcome: 'running' }));
      return { logId: String(row?.id) };
    });
    if ('until' in reserved) {
      await this.continueAt(job, data, rule, reserved.until, 'deferred', `global budget of ${budget.maxActions} actions per ${budget.perMs / 1000}s spent; waits until ${reserved.until.toISOString()}`, false);
      return;
    }
    const started = performance.now();
    const logId = reserved.logId;
    const controller = new AbortController();
    this.running.set(job.id, controller);
    const limitMs = this.d.config.remediation.actionTimeoutMs;
    // Aborted a little before the queue would take the job back, so the outcome is ours to record.
    const timeout = setTimeout(() => controller.abort(new Error(`action timed out after ${limitMs / 1000}s`)), Math.max(1_000, limitMs - 5_000));
    try {
      const result = await action.run(this.d.ctx, data.params as never, controller.signal);
      const verdict = await untilAborted(action.verify(this.d.ctx, data.params as never, controller.signal), controller.signal);
      const ms = performance.now() - started;
      const outcome: Outcome = verdict.fixed ? 'fixed' : 'not_fixed';
      await this.d.state.query(sql.FINISH_LOG, [logId, outcome, `${result.summary}; verify: ${verdict.detail}`, null, ms]);
      this.count(rule, outcome, ms);
      if (verdict.fixed) {
        await this.d.state.query(sql.CIRCUIT_SUCCESS, [rule.name]);
      } else {
        await this.failure(rule, `not fixed: ${verdict.detail}`);
        await this.retry(job, data, rule, rule.cooldownMs, `not fixed: ${verdict.detail}`);
      }
      await this.annotate(rule, data, outcome, `${result.summary}; ${verdict.detail}`);
    } catch (err) {
      await this.finishFailure(job, data, rule, base, logId, err, performance.now() - started);
    } finally {
      clearTimeout(timeout);
      this.running.delete(job.id);
    }
  }

  private async finishFailure(job: Job<JobData>, data: JobData, rule: Rule, base: Omit<RecordInput, 'outcome'>, logId: string | undefined, err: unknown, ms: number): Promise<void> {
    const message = err instanceof Error ? err.message : String(err);
    if (logId !== undefined) await this.d.state.query(sql.FINISH_LOG, [logId, 'failed', null, message, ms]);
    else await this.record({ ...base, outcome: 'failed', error: message });
    if (logId !== undefined) this.count(rule, 'failed', ms);
    await this.failure(rule, `failed: ${message}`);
    await this.retry(job, data, rule, Math.min(rule.cooldownMs, 30_000 * 2 ** (data.attempt - 1)), `failed: ${message}`);
    await this.annotate(rule, data, 'failed', message);
  }

  private async failure(rule: Rule, reason: string): Promise<void> {
    const [c] = await this.d.state.query<{ consecutive_failures: number; open: boolean }>(sql.CIRCUIT_FAILURE, [
      rule.name,
      this.d.config.remediation.circuit.failures,
      reason,
    ]);
    if (c?.open) {
      this.d.log.error({ rule: rule.name, failures: c.consecutive_failures, reason }, 'circuit open: rule stops acting; page a human');
      this.d.metrics.circuitOpen.set({ rule: rule.name }, 1);
    }
  }

  /** Another attempt later, unless attempts are spent or the circuit opened. */
  private async retry(job: Job<JobData>, data: JobData, rule: Rule, afterMs: number, why: string): Promise<void> {
    const [c] = await this.d.state.query<{ open: boolean }>(sql.GET_CIRCUIT, [rule.name]);
    if (data.attempt >= rule.maxAttempts || c?.open) return;
    await this.continueAt(job, { ...data, attempt: data.attempt + 1 }, rule, new Date(Date.now() + afterMs), undefined, why, true);
  }

  /**
   * Schedules the continuation of this episode as a new job with a derived id, so a repeat of
   * this handler (after a crash) cannot schedule it twice, and resolve can cancel it.
   */
  /**
   * A job for a rule this replica does not have: in a rolling deploy another replica may
   * have it (a rule just added), so the job goes back to the queue for them, every
   * HAND_BACK_MS, and is dropped, with an error, only when no replica took it within job_ttl.
   */
  private async handBack(data: JobData): Promise<void> {
    const since = data.handedBackAt ?? new Date().toISOString();
    if (Date.now() - Date.parse(since) >= this.d.config.remediation.jobTtlMs) {
      this.d.log.error({ rule: data.rule, target: data.target, since }, 'no replica has this rule: job dropped after job_ttl');
      return;
    }
    const next: JobData = { ...data, seq: data.seq + 1, handedBackAt: since };
    const id = uuidFor(`${data.episode}\u0000${next.seq}`);
    await this.boss.send(QUEUE, next, {
      id,
      startAfter: new Date(Date.now() + HAND_BACK_MS),
      group: { id: data.target },
      retentionSeconds: Math.ceil((HAND_BACK_MS + this.d.config.remediation.jobTtlMs) / 1000),
    });
    if (data.trigger === 'alert') await this.d.state.query(sql.SET_CURRENT_JOB, [data.episode, id]);
    // Once at warn: a rule removed everywhere would otherwise repeat this every HAND_BACK_MS until job_ttl.
    const level = data.handedBackAt === undefined ? 'warn' : 'debug';
    this.d.log[level]({ rule: data.rule, target: data.target, since }, 'job for a rule this replica does not have; handed back for a replica that has it');
  }

  private async continueAt(job: Job<JobData>, data: JobData, rule: Rule, at: Date, outcome: Outcome | undefined, reason: string, isRetry: boolean): Promise<void> {
    const next: JobData = { ...data, seq: data.seq + 1 };
    const id = uuidFor(`${data.episode}\u0000${next.seq}`);
    await this.boss.send(QUEUE, next, {
      id,
      startAfter: at,
      group: { id: data.target },
      retentionSeconds: Math.ceil((at.getTime() - Date.now() + this.d.config.remediation.jobTtlMs) / 1000),
    });
    if (data.trigger === 'alert') await this.d.state.query(sql.SET_CURRENT_JOB, [data.episode, id]);
    if (outcome) {
      await this.record({ trigger: data.trigger, rule, target: data.target, params: data.params, episode: data.episode, jobId: job.id, attempt: data.attempt, alert: data, outcome, reason });
    }
    this.d.log.info({ rule: rule.name, target: data.target, at: at.toISOString(), retry: isRetry }, reason);
  }

  private count(rule: Rule, outcome: Outcome, ms: number): void {
    this.d.metrics.remediations.inc({ rule: rule.name, action: rule.action.name, outcome });
    if (ms > 0) this.d.metrics.duration.observe({ rule: rule.name, action: rule.action.name }, ms / 1000);
  }

  /** Writes one log row; returns its id. Counts it unless it is the start of a run. */
  async record(r: RecordInput): Promise<string> {
    const [row] = await this.d.state.query<{ id: string }>(sql.INSERT_LOG, this.logValues(r));
    if (r.outcome !== 'running') {
      this.count(r.rule, r.outcome, 0);
      this.d.log.info({ rule: r.rule.name, action: r.rule.action.name, target: r.target, outcome: r.outcome, reason: r.reason, error: r.error }, 'remediation');
    }
    return String(row?.id);
  }

  private logValues(r: RecordInput): unknown[] {
    const alert = r.alert;
    const labels = alert && 'labels' in alert ? alert.labels : undefined;
    return [
      r.trigger,
      r.rule.name,
      r.rule.action.name,
      r.target,
      alert ? ('alertname' in alert ? alert.alertname || null : labels?.['alertname'] ?? null) : null,
      alert?.fingerprint || null,
      alert ? new Date(alert.startsAt) : null,
      r.episode ?? null,
      r.jobId ?? null,
      r.attempt,
      r.params === undefined ? null : JSON.stringify(r.params),
      r.plan === undefined ? null : JSON.stringify(r.plan),
      r.outcome,
      r.reason ?? null,
      r.error ?? null,
      null,
      this.replica,
      r.outcome === 'dry_run',
    ];
  }

  private async annotate(rule: Rule, data: JobData, outcome: Outcome, text: string): Promise<void> {
    if (!this.d.annotator) return;
    await this.d.annotator.post({
      text: `${rule.action.name} on ${data.target} (${rule.name}): ${outcome} — ${text}`,
      tags: [`rule:${rule.name}`, `action:${rule.action.name}`, `outcome:${outcome}`, `target:${data.target}`],
    });
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

export interface RecordInput {
  trigger: 'alert' | 'schedule';
  rule: Rule;
  target: string;
  params: Record<string, unknown> | undefined;
  episode: string | undefined;
  jobId: string | undefined;
  attempt: number;
  alert: AlertIn | JobData | undefined;
  outcome: Outcome | 'running';
  plan?: unknown;
  reason?: string;
  error?: string;
}

/** The next minute at which any of the windows is open, within 8 days; undefined if none. */
/**
 * `work`, unless `signal` fires first: then rejects with the signal's reason. The work itself
 * is not cancelled (it may not listen); it is only no longer waited for.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

export function nextWindowStart(windows: readonly Window[], from: Date): Date | undefined {
  const start = Math.ceil(from.getTime() / 60_000) * 60_000;
  for (let t = start; t < start + 8 * 86_400_000; t += 60_000) {
    const d = new Date(t);
    if (inAnyWindow(windows, d)) return d;
  }
  return undefined;
}

export type { AnyAction };
