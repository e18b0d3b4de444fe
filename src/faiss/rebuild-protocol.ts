// Messages between the FAISS maintenance actions (src/faiss/rebuild.ts, in the service) and
// the child process that builds a new index generation (src/faiss/rebuild-child.ts). JSON over
// Node's IPC channel. The job holds the source's connection string: it goes over the IPC pipe
// only, never into argv, the environment, a file or a message back.
import type { RebuildSource } from '../sql/faiss-rebuild.ts';

/**
 * What an IVF index's nprobe must add to the recall floor (recall@10): verify and the
 * collector measure on other samples, which differ by about ±0.01 at 1000 hits. The build
 * (rebuild-child.ts) raises nprobe until it is met; faiss-optimize looks for the smallest
 * nprobe that meets it.
 */
export const RECALL_MARGIN = 0.02;

export interface BuildJob {
  /** libpq URL of the source's Postgres target (secret: never logged or echoed). */
  url: string;
  source: RebuildSource;
  /** FAISS index_factory descriptor, e.g. "IVF256,Flat". */
  factory: string;
  metric: 'l2' | 'inner_product';
  /** Vectors to train on (a uniform sample of all rows); ignored for types that need no training. */
  trainSize: number;
  /** Rows per spool write and per add() call. */
  batchSize: number;
  /** nprobe to write into an IVF index (raised, doubling, until recall meets the floor). */
  nprobe: number;
  recallSample: number;
  recallFloor: number;
  /** Rows whose vector is unusable (wrong length, NULL or non-finite elements) that may be skipped. */
  maxSkipped: number;
  seed: number;
  /** File mode of the new index and id map: the live index's (0644 when there is none; umask applies). */
  mode: number;
  /** Temporary files the child creates ('wx') and fills; the parent removes whatever is left. */
  files: { index: string; ids: string; vectors: string };
}

export type BuildStage = 'connecting' | 'fetching' | 'training' | 'adding' | 'writing' | 'verifying';

export interface BuildStats {
  rows: number;
  dimension: number;
  skipped: number;
  /** First few ids of skipped rows, for the log. */
  skippedIds: string[];
  trained: boolean;
  trainVectors: number;
  /** FAISS class of what was written (from the file's fourcc). */
  fourcc: string;
  nlist: number | undefined;
  nprobe: number | undefined;
  /** nprobe before it was raised to meet the recall floor (absent when not raised). */
  nprobeRequested: number | undefined;
  recall: number;
  recallQueries: number;
  k: number;
  indexBytes: number;
  indexSha256: string;
  /** Seconds per phase. */
  seconds: { fetch: number; train: number; add: number; write: number; verify: number; total: number };
  /** Peak resident memory of the child (VmHWM), bytes. */
  peakRssBytes: number | undefined;
  /** Peak resident memory (VmHWM, bytes) at the end of each phase, to see which one sets the peak. */
  peakRssByPhase: Partial<Record<'start' | 'fetch' | 'train' | 'add' | 'write' | 'verify', number>>;
}

export type BuildMessage =
  | { kind: 'ready' }
  | { kind: 'progress'; stage: BuildStage; rows: number }
  | { kind: 'done'; stats: BuildStats }
  | { kind: 'failed'; message: string };
