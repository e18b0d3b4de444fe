import type { JobInsert, PgBoss } from 'pg-boss';
import * as sql from '../sql/state.ts';
import { QUEUE, type JobData } from './jobs.ts';
import type { StateDb } from './state.ts';

/** The episode row an alert's first job opens (housekeeper.episodes). */
export interface EpisodeRow {
  episode: string;
  rule: string;
  alertname: string;
  fingerprint: string;
  starts_at: string;
  target: string;
  labels: Record<string, string>;
}

export type NewJob = JobInsert<JobData> & { id: string };

/** An alert's job and episode waiting for the next batched store; settled once it commits. */
interface PendingStore {
  job: NewJob;
  episode: EpisodeRow;
  resolve(inserted: boolean): void;
  reject(err: unknown): void;
}

/** Stores in flight at once, and alerts per store; more wait for the next. */
const STORE_IN_FLIGHT = 2;
const STORE_BATCH_MAX = 500;

/**
 * Group commit: the jobs and episodes of the alerts accepted while a store is in flight are
 * written together, one pg-boss insert and one episode insert per batch, rather than two
 * statements (two commits) per alert. Each caller still waits for its own batch's commit,
 * so the webhook answers 202 only once its jobs are stored.
 */
export class BatchStore {
  private readonly boss: PgBoss;
  private readonly state: StateDb;
  private readonly pending: PendingStore[] = [];
  private storesInFlight = 0;
  private storeScheduled = false;

  constructor(boss: PgBoss, state: StateDb) {
    this.boss = boss;
    this.state = state;
  }

  /** Resolves true if this call inserted the job, false if the id already existed (a repeat or an HA duplicate). */
  store(job: NewJob, episode: EpisodeRow): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ job, episode, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
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
          this.schedule();
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
      await this.state.query(sql.INSERT_EPISODES, [JSON.stringify(unique.map((p) => p.episode))]);
      const inserted = new Set(ids ?? []);
      for (const p of batch) p.resolve(first.get(p.job.id) === p && inserted.has(p.job.id));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
