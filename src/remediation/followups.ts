import type { PgBoss } from 'pg-boss';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import * as sql from '../sql/state.ts';
import { uuidFor } from '../util/uuid.ts';
import { QUEUE, type JobData } from './jobs.ts';
import type { Journal } from './journal.ts';
import { entry, type Run } from './run.ts';
import type { StateDb } from './state.ts';

/** How soon a job this replica cannot run (its rule is unknown here) is offered again. */
const HAND_BACK_MS = 5_000;

interface FollowUpDeps {
  boss: PgBoss;
  state: StateDb;
  config: Config;
  log: Logger;
  journal: Journal;
}

/**
 * What comes after a job that did not finish its episode: a deferral, a retry, or a hand-back.
 * Each is a new job with an id derived from (episode, seq), so a repeat of the handler that
 * queues it (after a crash) cannot queue it twice; it becomes the episode's current job, so
 * that a resolved alert cancels it.
 */
export class FollowUps {
  private readonly d: FollowUpDeps;

  constructor(d: FollowUpDeps) {
    this.d = d;
  }

  /** The episode waits until `until` (a window, a cooldown, the budget); logged as deferred. */
  async defer(run: Run, until: Date, reason: string): Promise<void> {
    await this.continueAt(run.data, until);
    await this.d.journal.record(entry(run, { outcome: 'deferred', reason }));
    this.d.log.info({ rule: run.rule.name, target: run.data.target, at: until.toISOString(), retry: false }, reason);
  }

  /** Another attempt after `afterMs`, unless attempts are spent or the circuit opened. */
  async retry(run: Run, afterMs: number, why: string): Promise<void> {
    const { data, rule } = run;
    const [c] = await this.d.state.query<{ open: boolean }>(sql.GET_CIRCUIT, [rule.name]);
    if (data.attempt >= rule.maxAttempts || c?.open) return;
    const at = new Date(Date.now() + afterMs);
    await this.continueAt({ ...data, attempt: data.attempt + 1 }, at);
    this.d.log.info({ rule: rule.name, target: data.target, at: at.toISOString(), retry: true }, why);
  }

  /**
   * A job for a rule this replica does not have: in a rolling deploy another replica may
   * have it (a rule just added), so the job goes back to the queue for them, every
   * HAND_BACK_MS, and is dropped, with an error, only when no replica took it within job_ttl.
   */
  async handBack(data: JobData): Promise<void> {
    const since = data.handedBackAt ?? new Date().toISOString();
    if (Date.now() - Date.parse(since) >= this.d.config.remediation.jobTtlMs) {
      this.d.log.error({ rule: data.rule, target: data.target, since }, 'no replica has this rule: job dropped after job_ttl');
      return;
    }
    await this.continueAt({ ...data, handedBackAt: since }, new Date(Date.now() + HAND_BACK_MS));
    // Once at warn: a rule removed everywhere would otherwise repeat this every HAND_BACK_MS until job_ttl.
    const level = data.handedBackAt === undefined ? 'warn' : 'debug';
    this.d.log[level]({ rule: data.rule, target: data.target, since }, 'job for a rule this replica does not have; handed back for a replica that has it');
  }

  /** Queues the episode's next job, to start at `at`, and makes it the episode's current job. */
  private async continueAt(data: JobData, at: Date): Promise<void> {
    const next: JobData = { ...data, seq: data.seq + 1 };
    const id = uuidFor(`${data.episode}\u0000${next.seq}`);
    await this.d.boss.send(QUEUE, next, {
      id,
      startAfter: at,
      group: { id: data.target },
      retentionSeconds: Math.ceil((at.getTime() - Date.now() + this.d.config.remediation.jobTtlMs) / 1000),
    });
    if (data.trigger === 'alert') await this.d.state.query(sql.SET_CURRENT_JOB, [data.episode, id]);
  }
}
