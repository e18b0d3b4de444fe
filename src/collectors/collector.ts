import type { Logger } from '../log.ts';
import type { Family, MetricFactory } from '../metrics/registry.ts';
import type { Gauge } from 'prom-client';
import type { Targets } from '../targets/index.ts';
import type { Config } from '../config.ts';

export type LabelValues = Record<string, string | number>;

/** What a collector sees while it collects one target. */
export interface CollectContext<T> {
  readonly target: T;
  /** Stages one sample; the runner publishes it only if the whole collection succeeds. */
  set(metric: Family, labels: LabelValues, value: number): void;
  readonly signal: AbortSignal;
  readonly log: Logger;
}

/**
 * One collector (one file each): declares its metric families next to the code that fills
 * them, and only throws on failure. The runner owns deadlines, success/duration metrics,
 * the target's `*_up` and error logging.
 */
export interface Collector<T extends { readonly name: string }, M> {
  readonly name: string;
  readonly enabledByDefault: boolean;
  targets(targets: Targets, config: Config): readonly T[];
  metrics(f: MetricFactory): M;
  /** The family that says whether the target answered (pg_up, redis_up, ...), if any. */
  up?(m: M): Gauge<string>;
  collect(ctx: CollectContext<T>, m: M, config: Config): Promise<void>;
  /**
   * Stops whatever the collector runs in the background (a checker process, a verify loop,
   * a followed file) for these targets: the service's own, once, when it shuts down (two
   * services in one process never close each other's).
   */
  close?(targets: readonly T[]): Promise<void>;
}

/** Any collector, with its target and metric types forgotten; the runner needs no more. */
export type AnyCollector = Collector<{ readonly name: string }, unknown>;

export function defineCollector<T extends { readonly name: string }, M>(c: Collector<T, M>): AnyCollector {
  return c as unknown as AnyCollector;
}
