// Prints docs/metrics.md's reference from the collectors' own declarations, so the
// documentation cannot drift from the code (test/docs.test.ts compares the two).
import { Registry } from 'prom-client';
import { collectors } from '../src/collectors/index.ts';
import { MetricFactory } from '../src/metrics/registry.ts';
import { declareRunnerMetrics } from '../src/collectors/runner.ts';
import { declareServiceMetrics } from '../src/app.ts';
import { declareRemediationMetrics } from '../src/remediation/metrics.ts';

export function metricsReference(): string {
  const out: string[] = [];
  const table = (title: string, f: MetricFactory): void => {
    out.push('', `#### ${title}`, '', '| metric | type | labels | meaning |', '| --- | --- | --- | --- |');
    for (const d of f.declared) out.push(`| \`${d.name}\` | ${d.type} | ${d.labels.join(', ')} | ${d.help.replace(/\|/g, '\\|')} |`);
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

if (import.meta.main) {
  const { readFileSync, writeFileSync } = await import('node:fs');
  const doc = new URL('../docs/metrics.md', import.meta.url);
  if (process.argv.includes('--write')) {
    const text = readFileSync(doc, 'utf8').replace(
      /<!-- metrics:begin -->\n[\s\S]*?<!-- metrics:end -->/,
      `<!-- metrics:begin -->\n${metricsReference()}\n<!-- metrics:end -->`,
    );
    writeFileSync(doc, text);
  } else {
    process.stdout.write(`${metricsReference()}\n`);
  }
}
