// Setting a gauge's series the way prom-client's Gauge.set does, without its cost per call.
//
// The runner republishes every staged sample (~1,600 per collection) into freshly reset
// gauges. prom-client's set() keys each series by Object.keys(labels) sorted, which allocates
// two arrays and a sort buffer per sample: about a quarter of the bytes a scrape allocated,
// and GC time with it. The gauge already holds its label names sorted (`sortedLabelNames`,
// which its inc() and remove() key with): keyed with those, the key is the same string
// whenever the labels pass the same check set() makes, so the store ends up identical
// (test/store.test.ts compares it with set()'s, duplicates and errors included).
import { format, inspect } from 'node:util';
import type { Gauge } from 'prom-client';

type LabelValues = Partial<Record<string, string | number>>;

/** The parts of prom-client 15's Gauge this module writes; see `store`. */
interface GaugeStore {
  hashMap: Record<string, { value: number; labels: LabelValues }>;
  labelNames: readonly string[];
  sortedLabelNames: readonly string[];
}

/** The gauge's store when it has the shape this module knows, else undefined (set() is used). */
function store(gauge: Gauge<string>): GaugeStore | undefined {
  const g = gauge as unknown as Partial<Record<keyof GaugeStore, unknown>>;
  const ok = typeof g.hashMap === 'object' && g.hashMap !== null && Array.isArray(g.labelNames) && Array.isArray(g.sortedLabelNames);
  return ok ? (g as GaugeStore) : undefined;
}

/** gauge.set(labels, value): same checks, same error messages, same store. */
export function setGauge(gauge: Gauge<string>, labels: LabelValues, value: number): void {
  const s = store(gauge);
  if (s === undefined) {
    gauge.set(labels, value);
    return;
  }
  if (typeof value !== 'number') throw new TypeError(`Value is not a valid number: ${format(value)}`);
  for (const name in labels) {
    if (!s.labelNames.includes(name)) throw new Error(`Added label "${name}" is not included in initial labelset: ${inspect(s.labelNames)}`);
  }
  // prom-client's key: "name:value," per defined label, in sorted name order.
  let key = '';
  for (const name of s.sortedLabelNames) {
    const v = labels[name];
    if (v !== undefined) key += `${name}:${v},`;
  }
  // A new entry each time, as set() makes: the last value for a label set wins.
  s.hashMap[key] = { value, labels };
}
