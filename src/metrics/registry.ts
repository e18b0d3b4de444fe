import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type Metric,
  type MetricObjectWithValues,
  type MetricValue,
} from 'prom-client';

/** A metric family a collector fills on every collection. Counters are refilled by reset + inc. */
export type Family = Gauge<string> | Counter<string>;

/**
 * Declares metric families in the service's one registry. Families declared for a target
 * collector get a leading `target` label (the target's name from config), so an alert's
 * labels name what a remediation acts on.
 */
/** What a family was declared with; the README's metrics reference is generated from these. */
export interface Declared {
  name: string;
  type: 'gauge' | 'counter' | 'histogram';
  help: string;
  labels: string[];
}

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

// prom-client's OpenMetrics registry renames counters in place (strips "_total") when it
// renders, which would corrupt the text format for the next scrape if both shared metric
// objects. So one registry holds the metrics, and OpenMetrics is rendered from read-only
// views of them.
interface MetricView {
  get(): Promise<MetricObjectWithValues<MetricValue<string>>>;
}
// The content-type constructor argument and getMetricsAsString are public in prom-client's
// JavaScript but missing from its typings.
const RegistryWithType = Registry as unknown as new (contentType: string) => {
  getMetricsAsString(metric: MetricView): Promise<string>;
};
const omRenderer = new RegistryWithType(Registry.OPENMETRICS_CONTENT_TYPE);
const textRenderer = new RegistryWithType(Registry.PROMETHEUS_CONTENT_TYPE);

type Sample = MetricObjectWithValues<MetricValue<string>>;

/** OpenMetrics' view of a family (see renderOpenMetrics). */
function openMetricsView(m: Sample): Sample {
  if ((m.type as unknown) !== 'counter') return m;
  // OpenMetrics requires counters to end in _total and renderers append it. The anchor
  // exporters' counters without it (postgres_exporter's pg_stat_database_*) must keep their
  // names, so in OpenMetrics they are typed "unknown", which allows any name: Prometheus
  // stores the same series whichever format it scraped.
  if (!m.name.endsWith('_total')) return { ...m, type: 'unknown' as unknown as typeof m.type };
  return { ...m, name: m.name.replace(/_total$/, '') };
}

export async function renderOpenMetrics(registry: Registry): Promise<string> {
  return renderSelected(registry.getMetricsAsArray() as unknown as Metric[], true);
}

/**
 * Renders the given families, keeping only the series whose labels pass `keep` when given (the families
 * themselves keep their HELP and TYPE). Used by /probe for one target's series, and for all
 * of OpenMetrics.
 */
export async function renderSelected(metrics: readonly Metric[], openMetrics: boolean, keep?: (labels: Partial<Record<string, string | number>>) => boolean): Promise<string> {
  const renderer = openMetrics ? omRenderer : textRenderer;
  const parts = await Promise.all(
    metrics.map((metric) =>
      renderer.getMetricsAsString({
        get: async () => {
          const m = await metric.get();
          const kept = keep === undefined ? m : { ...m, values: m.values.filter((v) => keep(v.labels)) };
          return openMetrics ? openMetricsView(kept) : kept;
        },
      }),
    ),
  );
  return openMetrics ? `${parts.join('\n')}\n# EOF\n` : `${parts.join('\n\n')}\n`;
}

export function wantsOpenMetrics(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('application/openmetrics-text');
}
