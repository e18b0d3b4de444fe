// Messages between the checker (src/faiss/checker.ts, in the service) and the child process
// that loads and probes one index (src/faiss/check-child.ts). JSON over Node's IPC channel.
// The child does one job and exits: a check (the collector's, and the actions' verify), or
// an optimize (faiss-optimize: the smallest nprobe that meets a recall target).

/** Scratch directories are named <prefix><child pid>-XXXXXX. */
export const SCRATCH_PREFIX = 'hk-faiss-check-';

/** What the checker asks the child to do: one check of one index file, then exit. */
export interface CheckJob {
  kind: 'check';
  path: string;
  /** Neighbours per query for recall and the probe (10; fewer when the index holds fewer). */
  k: number;
  /** Queries (own vectors) used to measure recall. */
  recallSample: number;
  /** Single-query searches timed for the probe latency. */
  probes: number;
  /** Seed of the sample, so a check of the same file draws the same vectors. */
  seed: number;
  /** Bytes of stored vectors per chunk of the exact search (bounds the child's extra memory). */
  chunkBytes: number;
}

/** What a completed check found. Facts about the index are present only when it loaded. */
export interface CheckFacts {
  loadable: boolean;
  /** Why the file did not load (FAISS's message, first line). */
  error?: string;
  /** Set when the check stopped early on an error of its own after the file loaded. */
  incomplete?: string;
  vectors?: number;
  dimension?: number;
  trained?: boolean;
  /** FAISS class name (from the file's fourcc), "unknown" if not in our table. */
  type?: string;
  metric?: 'l2' | 'inner_product' | 'other';
  ivf?: { nlist: number; nprobe: number };
  recall?: { value: number; queries: number; k: number };
  /** Why recall was not measured (type whose vectors cannot be read, untrained, empty). */
  recallSkipped?: string;
  probe?: { medianSeconds: number; maxSeconds: number; queries: number; k: number };
}

/**
 * faiss-optimize's job: in `path`, a copy of a live IVFFlat index that the parent made beside
 * it, find the smallest nprobe whose recall@k over a sample of the index's own vectors,
 * against exact search, meets `target`, and leave it written in the copy's header, fsynced.
 * Only the copy is written, and only its nprobe field (faiss-node has no setter for it).
 */
export interface OptimizeJob {
  kind: 'optimize';
  path: string;
  k: number;
  recallSample: number;
  /** recall@k to meet: the floor plus the rebuild's margin, at most 1. */
  target: number;
  /** When no nprobe meets the target, nlist is kept if it meets this (the floor); else the job fails. */
  floor: number;
  seed: number;
  chunkBytes: number;
}

/** Recall at one nprobe, and the mean search time per query of the batch (for people). */
export interface NprobeMeasure {
  nprobe: number;
  recall: number;
  secondsPerQuery: number;
}

export interface OptimizeResult {
  vectors: number;
  dimension: number;
  nlist: number;
  /** nprobe stored in the file before (the live index's). */
  nprobeBefore: number;
  /** nprobe chosen, now in the file. */
  nprobe: number;
  recallBefore: number;
  recall: number;
  /** Whether the chosen nprobe meets the target (false: nlist, which meets only the floor). */
  metTarget: boolean;
  queries: number;
  k: number;
  /** Every nprobe measured, in the order measured. */
  measured: NprobeMeasure[];
}

/** What an optimize found; `loadable` false when the file is damaged or FAISS cannot read it. */
export type OptimizeReply = { ok: true; result: OptimizeResult } | { ok: false; loadable: boolean | undefined; error: string };

export type ChildMessage =
  /**
   * faiss-node loaded in the child: a crash from here on is the file's or FAISS's doing.
   * `scratch` is the child's private directory for chunk files (the parent removes it if
   * the child is killed before it can).
   */
  | { kind: 'ready'; scratch: string }
  /** FAISS read the file. */
  | { kind: 'loaded'; vectors: number; dimension: number; trained: boolean }
  | { kind: 'result'; facts: CheckFacts }
  | { kind: 'optimized'; reply: OptimizeReply };
