// Community-expression bench: how many of test/community/expressions.yml housekeeper answers
// next to the anchor exporters, and what its full /metrics costs, for the working tree
// ("after") and, when HOUSEKEEPER_COMMUNITY_BEFORE names another checkout (e.g. a
// `git worktree add` of an older commit, with node_modules and .tools linked in), for that
// one too ("before"). One stack for both: Postgres primary + replica, PgBouncer, Redis under
// test/community's light load; the anchors are postgres_exporter 0.11 (one process per
// server, default collectors) and redis_exporter 1.45 (no PgBouncer anchor runs here, see
// test/helpers/anchors.ts).
//
// Per variant, one after the other:
//   1. housekeeper as `npm start` runs it (scripts/start.sh of that checkout: its dist/ build);
//   2. a real Prometheus scrapes it (job housekeeper) and the anchors (job anchor) every second
//      until each target has MIN_SCRAPES samples; every expression is evaluated once per job
//      (test/community/compare.ts) and the answered ones counted;
//   3. Prometheus stops; after WARMUP scrapes, SCRAPES iterations scrape housekeeper, then
//      each anchor in turn (never two at once): median wall time of each, CPU per scrape of
//      each process (utime+stime from /proc/PID/stat over the iterations).
// Prints a markdown table and writes it to bench/results/community.md.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startPrometheus } from '../test/harness/prometheus.ts';
import { makeTempDir, removeTempDir } from '../test/harness/proc.ts';
import { startStack, type Stack } from '../test/harness/stack.ts';
import { startAnchors, type AnchorExporter, type Anchors } from '../test/helpers/anchors.ts';
import { eventuallyWithin } from '../test/helpers/wait.ts';
import { EVAL_LAG_MS, SYSTEMS, evaluate, loadExpressions, startLoad, tally, type Load, type Tally } from '../test/community/compare.ts';
import { benchLog, cpuMs, f2, intEnv, quantile, resultsFile, ROOT, scrape, startHousekeeper } from './lib.ts';

const RESULTS = resultsFile('community');
const SCRAPES = intEnv('HOUSEKEEPER_BENCH_SCRAPES', 200, 10, 5000);
const WARMUP = intEnv('HOUSEKEEPER_BENCH_WARMUP', 20, 1, 1000);
const MIN_SCRAPES = 25;
const HK = 'housekeeper';
const ANCHOR = 'anchor';

interface Cost {
  medianMs: number;
  cpuMs: number;
  samples: number;
  bytes: number;
}

interface VariantResult {
  label: string;
  commit: string;
  tally: Tally;
  hk: Cost;
  anchors: Array<{ name: string; cost: Cost }>;
}

function gitCommit(root: string): string {
  const head = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no', '--', 'src'], { encoding: 'utf8' }).trim();
  return dirty === '' ? head : `${head} + uncommitted src/ changes`;
}

async function countAnswered(hk: AnchorExporter, anchors: Anchors): Promise<Tally> {
  const prom = await startPrometheus({
    scrapeTargets: [{ job: HK, url: hk.url }, ...anchors.exporters.map((e) => ({ job: ANCHOR, url: e.url }))],
    extraArgs: ['--enable-feature=promql-negative-offset'],
  });
  try {
    await eventuallyWithin(120_000)('enough scrapes of every target', async () => {
      const r = await prom.query(`min by (job) (count_over_time(up[5m])) >= ${MIN_SCRAPES}`);
      return r.length === 2 ? true : undefined;
    });
    const down = await prom.query('up == 0');
    if (down.length > 0) throw new Error(`scrape targets down: ${JSON.stringify(down.map((d) => d.metric))}`);
    return tally(await evaluate(prom, loadExpressions(), [HK, ANCHOR], Date.now() - EVAL_LAG_MS), [HK, ANCHOR]);
  } finally {
    await prom.destroy();
  }
}

function seriesCount(body: string): number {
  return body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
}

/** Interleaved sequential scrapes of every exporter: wall time and CPU per scrape of each. */
async function measureCost(all: AnchorExporter[]): Promise<Cost[]> {
  const last: string[] = [];
  for (let i = 0; i < WARMUP; i++) for (const [k, e] of all.entries()) last[k] = (await scrape(e.url)).body;
  const wall: number[][] = all.map(() => []);
  const cpu0 = all.map((e) => cpuMs(e.pid));
  for (let i = 0; i < SCRAPES; i++) {
    for (const [k, e] of all.entries()) wall[k]!.push((await scrape(e.url)).ms);
  }
  const cpu1 = all.map((e) => cpuMs(e.pid));
  return all.map((_, k) => ({
    medianMs: quantile(wall[k]!, 0.5),
    cpuMs: (cpu1[k]! - cpu0[k]!) / SCRAPES,
    samples: seriesCount(last[k] ?? ''),
    bytes: Buffer.byteLength(last[k] ?? ''),
  }));
}

async function runVariant(label: string, root: string, s: Stack, anchors: Anchors, dir: string, log: (m: string) => void): Promise<VariantResult> {
  log(`${label}: housekeeper from ${root}`);
  const hk = await startHousekeeper(root, dir, s);
  try {
    const t = await countAnswered(hk, anchors);
    log(`${label}: housekeeper answers ${t.byJob[HK]}, anchors ${t.byJob[ANCHOR]} of ${t.total}`);
    const costs = await measureCost([hk, ...anchors.exporters]);
    return {
      label,
      commit: gitCommit(root),
      tally: t,
      hk: costs[0]!,
      anchors: anchors.exporters.map((e, k) => ({ name: e.name, cost: costs[k + 1]! })),
    };
  } finally {
    await hk.proc.stop(10_000);
  }
}

function report(results: VariantResult[], when: string, loadavg: string): string {
  const sum = (r: VariantResult, f: (c: Cost) => number): number => r.anchors.reduce((a, x) => a + f(x.cost), 0);
  const lines = [
    `Community-expression bench, ${when}; load average ${loadavg} at the start; ${results[0]?.tally.total ?? 0} expressions (test/community/expressions.yml); ${SCRAPES} sequential scrapes of each exporter after ${WARMUP} warm-up scrapes, with the light load of test/community running. Anchors: ${results[0]?.anchors.map((a) => a.name).join(', ')}.`,
    '',
    '| variant | answered: housekeeper | answered: anchors | only the anchors | housekeeper /metrics, median | anchors, sum of medians | housekeeper CPU/scrape | anchors CPU/scrape (sum) | housekeeper samples |',
    '|---|---|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.label} (${r.commit}) | ${r.tally.byJob[HK]} (${SYSTEMS.map((s) => `${s} ${r.tally.bySystem[s][HK]}`).join(', ')}) | ${r.tally.byJob[ANCHOR]} (${SYSTEMS.map((s) => `${s} ${r.tally.bySystem[s][ANCHOR]}`).join(', ')}) | ${r.tally.onlyIn(ANCHOR, HK).length} | ${f2(r.hk.medianMs)} ms | ${f2(sum(r, (c) => c.medianMs))} ms | ${f2(r.hk.cpuMs)} ms | ${f2(sum(r, (c) => c.cpuMs))} ms | ${r.hk.samples} |`,
    ),
    '',
    'Details:',
    '',
    ...results.flatMap((r) => [
      `- ${r.label}: housekeeper ${r.hk.samples} samples, ${r.hk.bytes} bytes; ${r.anchors.map((a) => `${a.name} ${f2(a.cost.medianMs)} ms, ${f2(a.cost.cpuMs)} ms CPU, ${a.cost.samples} samples`).join('; ')}.`,
      `  Only the anchors answer: ${r.tally.onlyIn(ANCHOR, HK).map((e) => e.id).join(', ') || 'none'}. Neither: ${r.tally.none.length}.`,
    ]),
    '- PgBouncer has no anchor here (prometheus-community/pgbouncer_exporter is not packaged; Debian\'s Python exporter cannot read PgBouncer 1.18), so the anchors answer no PgBouncer expression.',
  ];
  return lines.join('\n') + '\n';
}

export async function main(): Promise<void> {
  const log = benchLog('community');
  const before = process.env['HOUSEKEEPER_COMMUNITY_BEFORE'];
  if (before !== undefined && !fs.existsSync(path.join(before, 'scripts', 'start.sh'))) {
    throw new Error(`HOUSEKEEPER_COMMUNITY_BEFORE=${before}: no scripts/start.sh there`);
  }
  const dir = makeTempDir('hk-bench-community-', undefined);
  const loadavg = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?';
  let stack: Stack | undefined;
  let load: Load | undefined;
  let anchors: Anchors | undefined;
  try {
    log('starting Postgres primary + replica, PgBouncer, Redis, the load and the anchors');
    stack = await startStack();
    load = await startLoad(stack);
    anchors = await startAnchors({
      postgres: [
        { name: 'primary', server: stack.primary },
        { name: 'replica', server: stack.replica },
      ],
      redis: stack.redis,
    });
    const results: VariantResult[] = [];
    if (before !== undefined) results.push(await runVariant('before', before, stack, anchors, dir, log));
    results.push(await runVariant('after', ROOT, stack, anchors, dir, log));
    const text = report(results, new Date().toISOString().replace(/\.\d+Z$/, 'Z'), loadavg);
    process.stdout.write(`\n${text}`);
    fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
    fs.writeFileSync(
      RESULTS,
      `# Community-expression bench results\n\nWritten by \`HOUSEKEEPER_COMMUNITY_BEFORE=<checkout> bash scripts/node.sh bench/run.ts community\` (bench/community.ts); see bench/README.md.\n\n${text}`,
    );
    log(`written to ${path.relative(ROOT, RESULTS)}`);
  } finally {
    await anchors?.stop();
    await load?.stop();
    await stack?.stop();
    await removeTempDir(dir);
  }
}
