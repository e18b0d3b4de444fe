import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { renderExposition, type Keep } from './exposition.ts';

/** A metric family a collector fills on every collection. Counters are refilled by reset + inc. */
export type Family = Gauge<string> | Counter<string>;

/** What a family was declared with; the README's metrics reference is generated from these. */
export interface Declared {
  name: string;
  type: 'gauge' | 'counter' | 'histogram';
  help: string;
  labels: string[];
}

/**
 * Declares metric families in the service's one registry. Families declared for a target
 * collector get a leading `target` label (the target's name from config), so an alert's
 * labels name what a remediation acts on.
 */
export class MetricFactory {
  readonly families: Family[] = [];
  readonly declared: Declared[] = [];
  readonly registry: Registry;
  private readonly targetLabel: boolean;

  constructor(registry: Registry, targetLabel: boolean) {
    this.registry = registry;
    this.targetLabel = targetLabel;
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge<string> {
    const g = new Gauge({ name, help, labelNames: this.labels(labelNames), registers: [this.registry] });
    this.families.push(g);
    this.declared.push({ name, type: 'gauge', help, labels: this.labels(labelNames) });
    return g;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter<string> {
    const c = new Counter({ name, help, labelNames: this.labels(labelNames), registers: [this.registry] });
    this.families.push(c);
    this.declared.push({ name, type: 'counter', help, labels: this.labels(labelNames) });
    return c;
  }

  /** Histograms accumulate for the process's life; the runner never resets them. */
  histogram(name: string, help: string, labelNames: readonly string[], buckets: number[]): Histogram<string> {
    const h = new Histogram({ name, help, labelNames: this.labels(labelNames), buckets, registers: [this.registry] });
    this.declared.push({ name, type: 'histogram', help, labels: this.labels(labelNames) });
    return h;
  }

  private labels(names: readonly string[]): string[] {
    return this.targetLabel ? ['target', ...names] : [...names];
  }
}

export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

export const TEXT_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;
export const OPENMETRICS_CONTENT_TYPE = Registry.OPENMETRICS_CONTENT_TYPE;

/**
 * Prometheus text 0.0.4 of every family in the registry: the UTF-8 of what prom-client's
 * `registry.metrics()` gives, from our renderer. (The service sets no registry default labels,
 * which that method would add and this one does not.)
 */
export function renderText(registry: Registry): Promise<Buffer> {
  return renderExposition(registry.getMetricsAsArray() as unknown as Metric[], false);
}

/** OpenMetrics 1.0 of every family; counters without _total are typed `unknown` (see exposition.ts). */
export function renderOpenMetrics(registry: Registry): Promise<Buffer> {
  return renderExposition(registry.getMetricsAsArray() as unknown as Metric[], true);
}

/**
 * Renders the given families, keeping only the series whose labels pass `keep` when given (the families
 * themselves keep their HELP and TYPE). Used by /probe for one target's series and by
 * /metrics?collect=none for the service's own families.
 */
export function renderSelected(metrics: readonly Metric[], openMetrics: boolean, keep?: Keep): Promise<Buffer> {
  return renderExposition(metrics, openMetrics, keep);
}

export function wantsOpenMetrics(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('application/openmetrics-text');
}
