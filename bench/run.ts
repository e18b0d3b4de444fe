// Runs the benchmarks: `npm run bench` runs all of them, `bash scripts/node.sh bench/run.ts
// scrape` only the named ones. Each bench module exports main(); they run one after the
// other, never at once, so they do not disturb each other's figures.

const benches: Record<string, () => Promise<{ main(): Promise<void> }>> = {
  scrape: () => import('./scrape.ts'),
  faiss: () => import('./faiss.ts'),
  webhook: () => import('./webhook.ts'),
  'faiss-rebuild': () => import('./faiss-rebuild.ts'),
  community: () => import('./community.ts'),
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in benches));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown bench ${unknown.join(', ')} (known: ${Object.keys(benches).join(', ')})\n`);
  process.exit(2);
}
for (const name of wanted.length > 0 ? wanted : Object.keys(benches)) {
  process.stderr.write(`bench: ${name}\n`);
  const bench = await benches[name]!();
  await bench.main();
}
