// prom-client's own exposition, as housekeeper rendered it before it had its own renderer
// (src/metrics/exposition.ts): the oracle the new renderer is compared with, byte for byte.
import { Registry, type Metric, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Keep } from '../../src/metrics/exposition.ts';

type Family = MetricObjectWithValues<MetricValue<string>>;

interface MetricView {
  get(): Promise<Family>;
}
// The content-type constructor argument and getMetricsAsString are public in prom-client's
// JavaScript but missing from its typings.
const RegistryWithType = Registry as unknown as new (contentType: string) => {
  getMetricsAsString(metric: MetricView): Promise<string>;
};
const omRenderer = new RegistryWithType(Registry.OPENMETRICS_CONTENT_TYPE);
const textRenderer = new RegistryWithType(Registry.PROMETHEUS_CONTENT_TYPE);

/** The old OpenMetrics view: counters lose _total (prom-client appends it), or are `unknown` without it. */
function openMetricsView(m: Family): Family {
  if ((m.type as unknown) !== 'counter') return m;
  if (!m.name.endsWith('_total')) return { ...m, type: 'unknown' as unknown as typeof m.type };
  return { ...m, name: m.name.replace(/_total$/, '') };
}

/** The old renderSelected: prom-client's getMetricsAsString per family, over read-only views. */
export async function promClientRender(metrics: readonly Metric[], openMetrics: boolean, keep?: Keep): Promise<string> {
  const renderer = openMetrics ? omRenderer : textRenderer;
  const parts = await Promise.all(
    metrics.map((metric) =>
      renderer.getMetricsAsString({
        get: async () => {
          const m = (await metric.get()) as Family;
          const kept = keep === undefined ? m : { ...m, values: m.values.filter((v) => keep(v.labels)) };
          return openMetrics ? openMetricsView(kept) : kept;
        },
      }),
    ),
  );
  return openMetrics ? `${parts.join('\n')}\n# EOF\n` : `${parts.join('\n\n')}\n`;
}

/**
 * Runs every metric's `collect` once and then switches it off, so that two renders of the
 * registry see the same values (default metrics read the clock, CPU and heap when collected).
 */
export async function freeze(metrics: readonly Metric[]): Promise<void> {
  for (const metric of metrics) {
    const m = metric as unknown as { collect?: () => unknown };
    if (m.collect === undefined) continue;
    await m.collect();
    m.collect = undefined;
  }
}
