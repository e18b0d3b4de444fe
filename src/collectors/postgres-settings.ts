import type { Gauge } from 'prom-client';
import type { MetricFactory } from '../metrics/registry.ts';
import { PG_SETTINGS } from './postgres-settings-list.ts';

// pg_settings_* as postgres_exporter 0.11 serves them (its pg_setting.go): one gauge per
// bool/integer/real setting, dots and dashes in the name turned into underscores, time
// units converted to seconds and size units to bytes with the unit appended to the name,
// -1 (a setting's "off") left as it is, bools as 1/0. The families are declared from a list
// generated from a real server (scripts/pg-settings.ts), because the runner serves only
// families declared at startup; a setting the list lacks (another Postgres version) is
// skipped.

type Unit = { readonly suffix: '' | 'seconds' | 'bytes'; readonly factor: number };

const TIME: Readonly<Record<string, number>> = { ms: 0.001, s: 1, min: 60, h: 3600, d: 86400 };
const SIZE: Readonly<Record<string, number>> = { B: 1, kB: 2 ** 10, MB: 2 ** 20, GB: 2 ** 30, TB: 2 ** 40 };

/** The anchor's unit table, for plain units and block units such as 8kB or 16MB. */
export function settingUnit(unit: string): Unit | undefined {
  if (unit === '') return { suffix: '', factor: 1 };
  const t = TIME[unit];
  if (t !== undefined) return { suffix: 'seconds', factor: t };
  const m = /^(\d*)(B|kB|MB|GB|TB)$/.exec(unit);
  const base = m?.[2] === undefined ? undefined : SIZE[m[2]];
  if (m === null || base === undefined) return undefined;
  return { suffix: 'bytes', factor: (m[1] === '' ? 1 : Number(m[1])) * base };
}

export function settingMetricName(name: string, unit: Unit): string {
  const base = `pg_settings_${name.replace(/[.-]/g, '_')}`;
  return unit.suffix === '' ? base : `${base}_${unit.suffix}`;
}

export interface SettingsMetrics {
  readonly byName: ReadonlyMap<string, { readonly gauge: Gauge<string>; readonly unit: Unit }>;
}

export function declareSettings(f: MetricFactory, labels: readonly string[]): SettingsMetrics {
  const byName = new Map<string, { gauge: Gauge<string>; unit: Unit }>();
  for (const [name, unitText, help] of PG_SETTINGS) {
    const unit = settingUnit(unitText);
    if (unit === undefined) throw new Error(`pg settings list: unknown unit ${unitText} of ${name}`);
    const note = unit.suffix === '' ? '' : ` [Units converted to ${unit.suffix}.]`;
    byName.set(name, { gauge: f.gauge(settingMetricName(name, unit), `${help}${note}`, labels), unit });
  }
  return { byName };
}

/** One setting's value as the anchor computes it; undefined when it does not parse. */
export function settingValue(vartype: string, setting: string, unit: Unit): number | undefined {
  if (vartype === 'bool') return setting === 'on' ? 1 : 0;
  const v = Number(setting);
  if (setting.trim() === '' || Number.isNaN(v)) return undefined;
  return v === -1 ? v : v * unit.factor;
}
