import type { PgBoss } from 'pg-boss';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { uuidFor } from '../util/uuid.ts';
import { QUEUE, type JobData } from './jobs.ts';
import { paramsFor, type Rule } from './rules.ts';

/** A replica (re)starting up to this long after a scheduled time still enqueues that run. */
const SCHEDULE_CATCH_UP_MS = 10 * 60_000;
/** Runs queued per schedule and tick at most: a bound, should the clock jump. */
const MAX_DUE_PER_TICK = 1000;

interface SchedulerDeps {
  config: Config;
  rules: readonly Rule[];
  boss: PgBoss;
  log: Logger;
}

/**
 * The runbook's calendar: every tick enqueues the scheduled runs due since the last one.
 * Each run's job id is derived from (schedule, scheduled time), so however many replicas
 * tick, and however often one restarts around that time, each scheduled time runs once.
 */
export class Scheduler {
  private readonly d: SchedulerDeps;
  /** Schedules are due in (lastTick, now]; a restart looks back SCHEDULE_CATCH_UP_MS. */
  private lastTick = new Date(Date.now() - SCHEDULE_CATCH_UP_MS);
  private firstTick = true;

  constructor(d: SchedulerDeps) {
    this.d = d;
  }

  /** Enqueues the runs due in (last tick, now]; returns how many this call created. */
  async tick(now = new Date()): Promise<number> {
    let sent = 0;
    for (const rule of this.d.rules) {
      if (rule.kind !== 'schedule' || !rule.cron) continue;
      for (const t of this.due(rule.cron, now)) if (await this.enqueue(rule, t)) sent++;
    }
    this.lastTick = now;
    this.firstTick = false;
    return sent;
  }

  private due(cron: NonNullable<Rule['cron']>, now: Date): Date[] {
    const due: Date[] = [];
    for (let t = cron.next(this.lastTick); t !== null && t <= now && due.length < MAX_DUE_PER_TICK; t = cron.next(t)) due.push(t);
    // After a (re)start, only the latest run missed while no replica ticked is caught up.
    return this.firstTick ? due.slice(-1) : due;
  }

  private async enqueue(rule: Rule, t: Date): Promise<boolean> {
    // The same defaults and checks as an alert's params, so a run and its log entry look
    // the same whatever triggered it (the rule was checked at boot: this does not throw).
    const params = paramsFor(rule, {});
    const id = uuidFor(`schedule\u0000${rule.name}\u0000${t.toISOString()}`);
    const data: JobData = {
      trigger: 'schedule', episode: id, rule: rule.name, alertname: '', fingerprint: '', startsAt: t.toISOString(),
      params, target: rule.action.targetKey(params, this.d.config), attempt: 1, seq: 0,
    };
    const created = await this.d.boss.send(QUEUE, data, {
      id,
      group: { id: data.target },
      retentionSeconds: Math.ceil(this.d.config.remediation.jobTtlMs / 1000),
    });
    if (created === null) return false;
    this.d.log.info({ schedule: rule.name, at: t.toISOString() }, 'scheduled run queued');
    return true;
  }
}
