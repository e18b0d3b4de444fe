// Prints docs/metrics.md's reference from the collectors' own declarations, so the
// documentation cannot drift from the code (test/docs.test.ts compares the two).
import { Registry } from 'prom-client';
import { collectors } from '../src/collectors/index.ts';
import { MetricFactory } from '../src/metrics/registry.ts';
import { declareRunnerMetrics } from '../src/collectors/runner.ts';
import { declareServiceMetrics } from '../src/app.ts';
import { declareRemediationMetrics } from '../src/remediation/metrics.ts';
import { generatorMain } from './doc-block.ts';

export function metricsReference(): string {
  const out: string[] = [];
  const table = (title: string, f: MetricFactory): void => {
    out.push('', `#### ${title}`, '', '| metric | type | labels | meaning |', '| --- | --- | --- | --- |');
    // pg_settings_* is one family per server setting (~250, generated from Postgres): one row.
    const settings = f.declared.filter((d) => d.name.startsWith('pg_settings_'));
    for (const d of f.declared) {
      if (d.name.startsWith('pg_settings_')) {
        if (d !== settings[0]) continue;
        out.push(
          `| \`pg_settings_*\` | gauge | ${d.labels.join(', ')} | ${settings.length} families, one per bool/integer/real server setting, named and converted as postgres_exporter 0.11 does (dots to underscores; time units to \`_seconds\`, size units to \`_bytes\`; bools 1/0; -1 kept), e.g. \`pg_settings_max_connections\`, \`pg_settings_shared_buffers_bytes\`. |`,
        );
        continue;
      }
      out.push(`| \`${d.name}\` | ${d.type} | ${d.labels.join(', ')} | ${d.help.replace(/\|/g, '\\|')} |`);
    }
  };
  const own = new MetricFactory(new Registry(), false);
  declareRunnerMetrics(own);
  declareServiceMetrics(own);
  declareRemediationMetrics(own);
  table('housekeeper (the service itself)', own);
  out.push('', 'Plus the standard `process_*` and `nodejs_*` metrics of prom-client.');
  for (const c of collectors) {
    const f = new MetricFactory(new Registry(), true);
    c.metrics(f);
    table(`${c.name}${c.enabledByDefault ? '' : ' (off by default)'}`, f);
  }
  return out.join('\n').trimStart();
}

if (import.meta.main) generatorMain(new URL('../docs/metrics.md', import.meta.url), 'metrics', metricsReference);
