// The FAISS maintenance actions (faiss-rebuild, faiss-retrain, faiss-restore, faiss-optimize)
// against a real PostgreSQL 15 source table (3000 × 32 real[] vectors), real index files and real FAISS
// (faiss-node, in the build child and here to load what was written): a rebuilt index
// answers searches and maps labels back to the source rows' ids; an IVF rebuild trains; an
// abort and a SIGKILL of the build process mid-way leave the live index byte for byte as it
// was and no temporary file behind; faiss-restore puts back a backup-run vector_index backup,
// and without one rebuilds; the FAISS collector reports the new rebuild time on /metrics;
// faiss-optimize moves an IVF index's nprobe to the smallest that meets the recall floor
// (an index over a second table of spread-out vectors, where nprobe matters: the clustered
// rows of the first are found at nprobe 1), and leaves the live index alone when it fails.
//
// A build is stopped mid-way deterministically, without timing: its source is a view whose
// rows past the 2000th pass a function that takes a shared advisory lock the test holds
// exclusively, so the build's cursor blocks there with 2000 rows fetched.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import faiss from 'faiss-node';
import { Value } from '@sinclair/typebox/value';
import type { ActionContext, Plan, RunResult, Verification } from '../src/actions/action.ts';
import { actions } from '../src/actions/index.ts';
import { parseConfig, type Config } from '../src/config.ts';
import { closeTargets, createTargets, type Targets } from '../src/targets/index.ts';
import { readIndexHead } from '../src/faiss/factory.ts';
import { encodeIdsHeader, fileSha256, idsMatch, idsPath, prevIdsPath, prevPath, readIds, readIdsHeader } from '../src/faiss/ids.ts';
import { buildsInProgress, reconcileIds } from '../src/faiss/rebuild.ts';
import { RECALL_MARGIN } from '../src/faiss/rebuild-protocol.ts';
import { prng } from '../src/util/random.ts';
import { ivfNprobeOffset, readLayout } from '../src/faiss/format.ts';
import { checksRunning } from '../src/faiss/checker.ts';
import { parseSidecar, sidecarPath } from '../src/faiss/sidecar.ts';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { memoryLogger } from './helpers/config.ts';
import { scrapeUntil, startService, value, type Service } from './helpers/service.ts';
import { notification, rulesDir, startInstance, TOKEN, until as engineUntil } from './helpers/remediation.ts';
import { action, params as checked } from './helpers/actions.ts';
import { poller } from './helpers/wait.ts';

const ROWS = 3000;
const DIM = 32;
const SPREAD_ROWS = 2000;
const SPREAD_DIM = 16;
const GATE_AFTER = 2000;
const GATE_KEY = 4242;

let primary: PgServer;
let su: pg.Client;
let targets: Targets;
let ctx: ActionContext;
let config: Config;
let yaml: string;
const roots: string[] = [];
let docsPath: string;
let gatedPath: string;
let lonelyPath: string;
let mixedPath: string;
let tunedPath: string;
let plainPath: string;
let brokenPath: string;
let backupDir: string;
/** Everything the actions returned and logged, searched for secrets at the end. */
const outputs: unknown[] = [];
let logLines: string[];
/** Row id and vector of every source row, in insertion order. */
const rows: { id: number; v: number[] }[] = [];
/** The same for the spread-out table: uniform random vectors, no clusters. */
const spread: { id: number; v: number[] }[] = [];

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  roots.push(d);
  return d;
}


async function runAction(name: string, p: Record<string, unknown>, signal = AbortSignal.timeout(120_000)): Promise<{ plan: Plan; result: RunResult; verdict: Verification }> {
  const a = action(name);
  const plan = await a.plan(ctx, checked(a, p));
  const result = await a.run(ctx, p, signal);
  const verdict = await a.verify(ctx, p);
  outputs.push(plan, result, verdict);
  return { plan, result, verdict };
}

/** Bounded wait for a condition. */
const until = poller({ tries: 600, intervalMs: 50 });

/** Loads an index file with FAISS here (read throws on a bad file; it never aborts). */
function load(path: string): faiss.Index {
  return faiss.Index.read(path);
}

/**
 * The index searched exhaustively: an IVF index with nprobe = nlist (written into a copy of
 * its bytes), so that a stored vector always finds itself. At the index's own nprobe a vector
 * near the border of two lists can be assigned to one when added and probe the other when
 * searched, and which vectors those are depends on the training sample.
 */
function loadExhaustive(path: string): faiss.Index {
  const bytes = readFileSync(path);
  const layout = readLayout({ size: bytes.length, read: (offset, length) => bytes.subarray(offset, offset + length) });
  const at = ivfNprobeOffset(layout);
  if (at !== undefined && layout.ivf) bytes.writeBigUInt64LE(BigInt(layout.ivf.nlist), at);
  return faiss.Index.fromBuffer(bytes);
}

/** Every source row's nearest neighbour in the index, mapped through the id map, is that row. */
async function assertMapsBack(path: string, sample: number, source = rows): Promise<void> {
  assert.equal(load(path).ntotal(), source.length, 'the file as published loads, whole');
  const index = loadExhaustive(path);
  const { ids, header } = await readIds(idsPath(path));
  assert.equal(header.count, index.ntotal());
  const rnd = prng(99);
  for (let i = 0; i < sample; i++) {
    const row = source[Math.floor(rnd() * source.length)] as { id: number; v: number[] };
    const res = index.search(row.v, 1);
    const label = res.labels[0] as number;
    assert.ok(label >= 0 && label < ids.length, `label ${label} in range`);
    assert.equal(ids[label], BigInt(row.id), `nearest neighbour of row ${row.id} maps back to it`);
    assert.ok((res.distances[0] as number) < 1e-6, 'the row itself, at distance 0');
  }
}

/** Files in the index's directory that a build or publish left under a temporary name. */
function temporaries(path: string): string[] {
  const dir = join(path, '..');
  return readdirSync(dir).filter((n) => n.startsWith('.') || n.includes('.tmp') || n.includes('.partial'));
}

function sidecarTimes(path: string): Map<string, number> {
  return parseSidecar(readFileSync(sidecarPath(path), 'utf8'));
}

before(async () => {
  primary = await startPostgres();
  su = new pg.Client({ connectionString: primary.url({ db: 'app' }), application_name: 'test-admin' });
  await su.connect();
  // Clustered data, as embeddings are: 30 centres, each row a small offset from one. Values
  // are float32 already, so what Postgres stores is exactly what the test searches with.
  const rnd = prng(7);
  const centres = Array.from({ length: 30 }, () => Array.from({ length: DIM }, () => rnd() * 10));
  for (let i = 0; i < ROWS; i++) {
    const c = centres[i % centres.length] as number[];
    rows.push({ id: 5000 + 3 * i, v: c.map((x) => Math.fround(x + (rnd() - 0.5))) });
  }
  const insert = async (table: string, list: typeof rows): Promise<void> => {
    await su.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, emb real[])`);
    for (let i = 0; i < list.length; i += 500) {
      const part = list.slice(i, i + 500);
      await su.query(
        `INSERT INTO ${table} (id, emb) VALUES ${part.map((_, j) => `($${2 * j + 1}, $${2 * j + 2})`).join(', ')}`,
        part.flatMap((r) => [r.id, r.v]),
      );
    }
  };
  await insert('items', rows);
  await su.query('INSERT INTO items (id, emb) VALUES (1, NULL)'); // no vector: not indexed
  const srnd = prng(13);
  for (let i = 0; i < SPREAD_ROWS; i++) spread.push({ id: 70_000 + i, v: Array.from({ length: SPREAD_DIM }, () => Math.fround(srnd())) });
  await insert('spread_items', spread);
  await su.query(`
    CREATE FUNCTION gate() RETURNS boolean VOLATILE LANGUAGE plpgsql AS $$
    BEGIN
      IF NOT pg_try_advisory_lock_shared(${GATE_KEY}) THEN
        -- A notice flushes the server's output buffer: the rows before the gate reach the
        -- build while it waits (COPY would otherwise hold the last few kB back).
        RAISE NOTICE 'gate closed';
        PERFORM pg_advisory_lock_shared(${GATE_KEY});
      END IF;
      PERFORM pg_advisory_unlock_shared(${GATE_KEY});
      RETURN true;
    END $$`);
  // double precision[] vectors (cast to real on the server), and three rows that cannot go
  // into a 32-d index: wrong length, a NaN element, a NULL id with a good vector.
  await su.query(
    `CREATE VIEW mixed_items AS SELECT id::bigint AS id, emb::double precision[] AS emb FROM items ` +
      `UNION ALL SELECT 2, ARRAY[1, 2, 3]::double precision[] UNION ALL SELECT 3, array_fill('NaN'::double precision, ARRAY[${DIM}]) ` +
      `UNION ALL SELECT NULL, array_fill(0.5::double precision, ARRAY[${DIM}])`,
  );
  await su.query(`CREATE VIEW gated_items AS SELECT id, emb FROM items WHERE id <= ${(rows[GATE_AFTER - 1] as { id: number }).id} OR gate()`);

  docsPath = join(tempDir('hk-faiss-docs-'), 'docs.index');
  gatedPath = join(tempDir('hk-faiss-gated-'), 'gated.index');
  lonelyPath = join(tempDir('hk-faiss-lonely-'), 'lonely.index');
  mixedPath = join(tempDir('hk-faiss-mixed-'), 'mixed.index');
  tunedPath = join(tempDir('hk-faiss-tuned-'), 'tuned.index');
  plainPath = join(tempDir('hk-faiss-plain-'), 'plain.index');
  brokenPath = join(tempDir('hk-faiss-broken-'), 'broken.index');
  backupDir = tempDir('hk-faiss-backups-');
  yaml = `
postgres:
  - { name: primary, url: "${primary.url({ db: 'app' })}" }
faiss:
  - name: docs
    path: ${docsPath}
    recall_floor: 0.9
    source: { target: primary, table: items, id_column: id, vector_column: emb }
  - name: gated
    path: ${gatedPath}
    factory: "IVF8,Flat"
    source: { target: primary, table: gated_items, id_column: id, vector_column: emb }
  - name: lonely
    path: ${lonelyPath}
    factory: Flat
    source: { target: primary, table: public.items, id_column: id, vector_column: emb }
  - name: mixed
    path: ${mixedPath}
    factory: Flat
    source: { target: primary, table: mixed_items, id_column: id, vector_column: emb }
  - name: tuned
    path: ${tunedPath}
    source: { target: primary, table: spread_items, id_column: id, vector_column: emb }
  - { name: plain, path: ${plainPath} }
  - { name: broken, path: ${brokenPath} }
backups:
  directory: ${backupDir}
  kinds:
    vector_index: { pattern: "faiss-*.tar" }
`;
  config = parseConfig(yaml, join(tempDir('hk-faiss-config-'), 'housekeeper.yml'), {});
  const mem = memoryLogger();
  logLines = mem.lines;
  targets = createTargets(config, mem.log);
  ctx = { targets, config, log: mem.log };
});

after(async () => {
  await closeTargets(targets);
  await su.end();
  await primary.destroy();
  for (const d of roots) rmSync(d, { recursive: true, force: true });
});

test('the actions are registered with their contract', () => {
  for (const name of ['faiss-rebuild', 'faiss-retrain', 'faiss-restore', 'faiss-optimize']) {
    const a = action(name);
    assert.match(a.description, /[Ii]dempotent/);
    assert.equal(a.params['additionalProperties'], false);
    assert.equal(a.targetKey({ index: 'docs' }), 'faiss:docs');
    for (const bad of ['docs; rm -rf /', '{{ $labels.target }}', '', '../docs']) assert.equal(Value.Check(a.params, { index: bad }), false, `${name} index=${bad}`);
  }
  assert.equal(action('faiss-rebuild').disruptive, true);
  assert.equal(action('faiss-retrain').disruptive, true);
  assert.equal(action('faiss-restore').disruptive, false);
  assert.equal(action('faiss-optimize').disruptive, false);
  assert.equal(Value.Check(action('faiss-optimize').params, { index: 'docs', nprobe: 4 }), false, 'the nprobe is measured, not given');
  assert.equal(Value.Check(action('faiss-rebuild').params, { index: 'docs', factory: 'IVF16,Flat; DROP' }), false, 'factory is a descriptor, nothing else');
});

test('faiss-rebuild (Flat): a new index that answers searches and maps labels back to the source rows', async () => {
  const { plan, result, verdict } = await runAction('faiss-rebuild', { index: 'docs', factory: 'Flat' });
  assert.match(plan.summary, /live index missing/);
  assert.match(result.summary, /3000 vectors × 32/);
  assert.equal(result.details?.['vectors'], ROWS, 'the row without a vector is not indexed');
  assert.equal(result.details?.['previous_kept'], null);
  assert.ok(verdict.fixed, verdict.detail);
  const index = load(docsPath);
  assert.equal(index.ntotal(), ROWS);
  assert.equal(index.getDimension(), DIM);
  assert.equal((await readIndexHead(docsPath)).type, 'IndexFlatL2');
  await assertMapsBack(docsPath, 200);
  // The id map is the source's ids, each once, in the order they were added.
  const { ids } = await readIds(idsPath(docsPath));
  assert.deepEqual([...ids].map(Number).sort((a, b) => a - b), rows.map((r) => r.id));
  assert.ok((await idsMatch(idsPath(docsPath), await fileSha256(docsPath), ROWS)).ok);
  assert.ok(sidecarTimes(docsPath).has('rebuild'));
  assert.deepEqual(temporaries(docsPath), []);
});

test('faiss-rebuild (IVF): trains on a sample, stores an nprobe that meets the floor, keeps the previous generation', async () => {
  const before = await fileSha256(docsPath);
  const beforeAt = sidecarTimes(docsPath).get('rebuild') as number;
  const { result, verdict } = await runAction('faiss-rebuild', { index: 'docs', factory: 'IVF16,Flat', train_size: 2000 });
  assert.ok(verdict.fixed, verdict.detail);
  const d = result.details as Record<string, unknown>;
  assert.equal(d['trained'], true);
  assert.equal(d['train_vectors'], 2000);
  assert.equal(d['nlist'], 16);
  assert.ok((d['recall_at_10'] as number) >= 0.9, `recall ${String(d['recall_at_10'])}`);
  const head = await readIndexHead(docsPath);
  assert.equal(head.type, 'IndexIVFFlat');
  assert.equal(head.ivf?.nprobe, d['nprobe'], 'the nprobe reported is the one in the file');
  assert.equal(load(docsPath).ntotal(), ROWS);
  await assertMapsBack(docsPath, 200);
  // The previous generation, with its own map, is kept for rollback.
  assert.equal((await fileSha256(prevPath(docsPath))).sha256, before.sha256);
  assert.ok((await idsMatch(prevIdsPath(docsPath), before, ROWS)).ok);
  assert.ok((sidecarTimes(docsPath).get('rebuild') as number) >= beforeAt);
  assert.deepEqual(temporaries(docsPath), []);

  // Without a factory, the live index's type is kept.
  const plan = await action('faiss-rebuild').plan(ctx, { index: 'docs' });
  assert.match(plan.summary, /IVF16,Flat \(l2; type from live index\)/);
});

test('faiss-rebuild refuses what would abort FAISS, before FAISS sees it; the live index stays', async () => {
  const before = await fileSha256(docsPath);
  await assert.rejects(action('faiss-rebuild').run(ctx, { index: 'docs', factory: 'IVF4096,Flat' }, AbortSignal.timeout(60_000)), /needs at least 4096 training vectors/);
  await assert.rejects(action('faiss-rebuild').run(ctx, { index: 'docs', factory: 'NoSuchType' }, AbortSignal.timeout(60_000)), /could not parse index string NoSuchType/);
  assert.equal((await fileSha256(docsPath)).sha256, before.sha256);
  assert.equal(load(docsPath).ntotal(), ROWS);
  assert.deepEqual(temporaries(docsPath), []);
  assert.deepEqual(buildsInProgress(), []);
});

test('double precision vectors are read as real; rows with an unusable vector or a NULL id fail the build unless max_skipped_rows allows them; the live file keeps its mode', async () => {
  await assert.rejects(
    action('faiss-rebuild').run(ctx, { index: 'mixed' }, AbortSignal.timeout(60_000)),
    /row [23] has no usable vector or id .*max_skipped_rows is 0/,
  );
  assert.equal(existsSync(mixedPath), false, 'nothing published');
  assert.deepEqual(temporaries(mixedPath), []);
  await assert.rejects(
    action('faiss-rebuild').run(ctx, { index: 'mixed', max_skipped_rows: 2 }, AbortSignal.timeout(60_000)),
    /row \(NULL id\) has no usable vector or id .*3 such rows, max_skipped_rows is 2/,
  );
  const { result, verdict } = await runAction('faiss-rebuild', { index: 'mixed', max_skipped_rows: 3 });
  assert.ok(verdict.fixed, verdict.detail);
  assert.equal(result.details?.['skipped_rows'], 3);
  assert.deepEqual([...(result.details?.['skipped_ids'] as string[])].sort(), ['2', '3', 'NULL']);
  assert.equal(load(mixedPath).ntotal(), ROWS);
  await assertMapsBack(mixedPath, 50);
  // The operator's file mode (here: group-readable only) survives a rebuild, for the index and its map.
  chmodSync(mixedPath, 0o640);
  await runAction('faiss-rebuild', { index: 'mixed', max_skipped_rows: 3 });
  assert.equal(statSync(mixedPath).mode & 0o777, 0o640);
  assert.equal(statSync(idsPath(mixedPath)).mode & 0o777, 0o640);
});

/** Starts a rebuild of "gated" that stops at the gate with 2000 rows fetched; returns it once it is there. */
async function gatedBuild(signal: AbortSignal): Promise<{ running: Promise<RunResult>; pid: number }> {
  await su.query('SELECT pg_advisory_lock($1)', [GATE_KEY]);
  const running = action('faiss-rebuild').run(ctx, { index: 'gated', batch_size: 500 }, signal);
  running.catch(() => {}); // asserted by the caller
  const b = await until('the build to stop at the gate', () => buildsInProgress().find((x) => x.index === gatedPath && x.rows >= GATE_AFTER));
  assert.equal(b.rows, GATE_AFTER, 'the build is mid-way: fetched up to the gate');
  assert.equal(b.stage, 'fetching');
  assert.ok(b.pid !== undefined);
  assert.ok(temporaries(gatedPath).length > 0, 'the build is writing its temporary files');
  return { running, pid: b.pid };
}

async function assertGatedUntouched(before: { sha256: string; size: number }, beforeIds: { sha256: string; size: number }, sidecar: string): Promise<void> {
  assert.equal((await fileSha256(gatedPath)).sha256, before.sha256, 'the live index is byte for byte the old one');
  assert.equal((await fileSha256(idsPath(gatedPath))).sha256, beforeIds.sha256, 'so is its id map');
  assert.equal(readFileSync(sidecarPath(gatedPath), 'utf8'), sidecar, 'no rebuild recorded');
  const index = load(gatedPath);
  assert.equal(index.ntotal(), ROWS, 'and it loads, whole');
  assert.ok((await idsMatch(idsPath(gatedPath), before, ROWS)).ok);
  assert.equal(existsSync(prevPath(gatedPath)), false, 'nothing was published, so nothing became previous');
  assert.deepEqual(temporaries(gatedPath), [], 'no temporary file left');
  assert.deepEqual(buildsInProgress(), []);
}

test('an abort mid-way kills the build process and leaves the live index intact', async () => {
  // The gate is open (the test holds no lock): the first build goes through.
  const first = await runAction('faiss-rebuild', { index: 'gated' });
  assert.ok(first.verdict.fixed, first.verdict.detail);
  const before = await fileSha256(gatedPath);
  const beforeIds = await fileSha256(idsPath(gatedPath));
  const sidecar = readFileSync(sidecarPath(gatedPath), 'utf8');
  rmSync(prevPath(gatedPath), { force: true }); // none from here: a publish would make one
  const ac = new AbortController();
  const { running, pid } = await gatedBuild(ac.signal);
  try {
    ac.abort(new Error('test: stop the rebuild'));
    await assert.rejects(running, /test: stop the rebuild/);
  } finally {
    await su.query('SELECT pg_advisory_unlock($1)', [GATE_KEY]);
  }
  assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the build process is gone');
  await assertGatedUntouched(before, beforeIds, sidecar);
});

test('a SIGKILL of the build process mid-way leaves the live index intact', async () => {
  const before = await fileSha256(gatedPath);
  const beforeIds = await fileSha256(idsPath(gatedPath));
  const sidecar = readFileSync(sidecarPath(gatedPath), 'utf8');
  const { running, pid } = await gatedBuild(AbortSignal.timeout(120_000));
  try {
    process.kill(pid, 'SIGKILL');
    await assert.rejects(running, /killed by SIGKILL while fetching/);
  } finally {
    await su.query('SELECT pg_advisory_unlock($1)', [GATE_KEY]);
  }
  await assertGatedUntouched(before, beforeIds, sidecar);
  // And the next run completes (another type, so the two generations differ: a rebuild of
  // the same rows with the same type writes the same bytes, FAISS's k-means being seeded).
  const again = await runAction('faiss-rebuild', { index: 'gated', factory: 'IVF4,Flat' });
  assert.ok(again.verdict.fixed, again.verdict.detail);
  await assertMapsBack(gatedPath, 50);
});

test('a crash between the two renames of a publish is repaired: the map goes back to the live index', async () => {
  // Simulate it: the live index is the previous generation again, while the map is the new one.
  const live = await fileSha256(gatedPath);
  assert.ok((await idsMatch(idsPath(gatedPath), live, ROWS)).ok);
  copyFileSync(prevPath(gatedPath), gatedPath);
  const old = await fileSha256(gatedPath);
  assert.equal((await idsMatch(idsPath(gatedPath), old)).ok, false, 'the map names another generation');
  const verdict = await action('faiss-rebuild').verify(ctx, { index: 'gated' });
  assert.equal(verdict.fixed, false);
  assert.match(verdict.detail, /another generation|not the file that was published/);
  assert.match((await reconcileIds(gatedPath)) ?? '', /restored gated.index.ids/);
  assert.ok((await idsMatch(idsPath(gatedPath), old, ROWS)).ok);
  assert.equal(await reconcileIds(gatedPath), undefined, 'nothing more to repair');
});

test('faiss-retrain retrains an IVF index and records it; a flat index has nothing to train', async () => {
  const { plan, result, verdict } = await runAction('faiss-retrain', { index: 'docs', train_size: 1500 });
  assert.match(plan.summary, /retrain FAISS index "docs"/);
  assert.ok(verdict.fixed, verdict.detail);
  assert.equal(result.details?.['train_vectors'], 1500);
  assert.equal(result.details?.['factory'], 'IVF16,Flat');
  assert.ok(sidecarTimes(docsPath).has('retrain'));
  await assertMapsBack(docsPath, 100);

  await runAction('faiss-rebuild', { index: 'lonely' });
  const flatPlan = await action('faiss-retrain').plan(ctx, { index: 'lonely' });
  assert.equal(flatPlan.nothingToDo, true);
  assert.match(flatPlan.summary, /IndexFlatL2: nothing to train/);
});

/**
 * Writes `nprobe` into a live IVFFlat index in place (byte 45, as the build does), and the
 * id map's header for the new bytes: the index as if it had been built with that nprobe.
 */
async function setNprobe(path: string, nprobe: number): Promise<void> {
  const index = readFileSync(path);
  index.writeBigUInt64LE(BigInt(nprobe), 45);
  writeFileSync(path, index);
  const map = readFileSync(idsPath(path));
  const { count } = await readIdsHeader(idsPath(path));
  const { sha256, size } = await fileSha256(path);
  encodeIdsHeader({ count, indexSize: size, indexSha256: sha256 }).copy(map, 0);
  writeFileSync(idsPath(path), map);
}

/**
 * Recall@10 of the index at `path` (with the nprobe in its file), measured here and not by
 * housekeeper's code: FAISS in this process, 500 rows of the spread table as queries,
 * brute force over all of them in JavaScript for the truth, labels mapped through the id map.
 * A result at the k-th exact distance counts (ties).
 */
async function spreadRecall(path: string): Promise<number> {
  const k = 10;
  const index = load(path);
  const { ids } = await readIds(idsPath(path));
  const rnd = prng(5);
  const queries = Array.from({ length: 500 }, () => spread[Math.floor(rnd() * spread.length)] as { id: number; v: number[] });
  const res = index.search(queries.flatMap((q) => q.v), k);
  let hits = 0;
  queries.forEach((q, qi) => {
    const exact = spread.map((r) => ({ id: r.id, d: r.v.reduce((acc, x, i) => acc + (x - (q.v[i] as number)) ** 2, 0) })).sort((a, b) => a.d - b.d);
    const truth = new Set(exact.slice(0, k).map((x) => x.id));
    const kth = (exact[k - 1] as { d: number }).d;
    for (let j = 0; j < k; j++) {
      const label = res.labels[qi * k + j] as number;
      if (label >= 0 && (truth.has(Number(ids[label])) || (res.distances[qi * k + j] as number) <= kth * (1 + 1e-4))) hits++;
    }
  });
  return hits / (queries.length * k);
}

/** The nprobe stored in an index file. */
async function nprobeOf(path: string): Promise<number | undefined> {
  return (await readIndexHead(path)).ivf?.nprobe;
}

test('faiss-optimize lowers a too-high nprobe to the smallest that meets the floor: only the header changes, the map is rewritten, the previous kept, optimize recorded', async () => {
  const built = await runAction('faiss-rebuild', { index: 'tuned', factory: 'IVF16,Flat', nprobe: 16 });
  assert.ok(built.verdict.fixed, built.verdict.detail);
  assert.equal(await nprobeOf(tunedPath), 16, 'every list searched: exact, and slow');
  const before = readFileSync(tunedPath);
  const beforeHash = await fileSha256(tunedPath);
  const beforeIds = await readIds(idsPath(tunedPath));

  const { plan, result, verdict } = await runAction('faiss-optimize', { index: 'tuned' });
  assert.notEqual(plan.nothingToDo, true, plan.summary);
  assert.match(plan.summary, /optimize FAISS index "tuned" .*: nprobe 16 → \d+ of 16 lists/);
  assert.ok(verdict.fixed, verdict.detail);
  const d = result.details as Record<string, unknown>;
  const nprobe = (await nprobeOf(tunedPath)) as number;
  assert.equal(d['nprobe'], nprobe, 'the nprobe reported is the one in the file');
  assert.equal(d['nprobe_before'], 16);
  assert.ok(nprobe > 1 && nprobe < 16, `nprobe ${nprobe}: lower, and on spread-out data more than one list`);
  // The smallest: one less was measured and missed the target, the floor plus the rebuild's margin.
  const target = 0.9 + RECALL_MARGIN;
  const measured = d['measured'] as Array<{ nprobe: number; recall_at_10: number }>;
  assert.ok((measured.find((m) => m.nprobe === nprobe)?.recall_at_10 ?? 0) >= target, JSON.stringify(measured));
  assert.ok((measured.find((m) => m.nprobe === nprobe - 1)?.recall_at_10 ?? 1) < target, JSON.stringify(measured));
  // Measured independently, on other queries: the floor holds at the new nprobe.
  const recall = await spreadRecall(tunedPath);
  assert.ok(recall >= 0.9, `recall@10 ${recall} at nprobe ${nprobe}`);
  // A copy of the live index but for the 8 bytes of nprobe.
  const after = readFileSync(tunedPath);
  assert.equal(after.length, before.length);
  after.writeBigUInt64LE(16n, 45);
  assert.ok(after.equals(before), 'every other byte is the old index\'s');
  // The map: the same labels, its header naming the new file.
  const live = await fileSha256(tunedPath);
  assert.ok((await idsMatch(idsPath(tunedPath), live, SPREAD_ROWS)).ok);
  assert.deepEqual((await readIds(idsPath(tunedPath))).ids, beforeIds.ids);
  await assertMapsBack(tunedPath, 100, spread);
  // The previous generation, with its own map, kept.
  assert.equal((await fileSha256(prevPath(tunedPath))).sha256, beforeHash.sha256);
  assert.ok((await idsMatch(prevIdsPath(tunedPath), beforeHash, SPREAD_ROWS)).ok);
  // Recorded, for faiss_index_last_maintenance_timestamp_seconds{action="optimize"}; the rebuild's entry kept.
  const times = sidecarTimes(tunedPath);
  assert.ok(times.has('optimize') && times.has('rebuild'));
  const rec = (JSON.parse(readFileSync(sidecarPath(tunedPath), 'utf8')) as { actions: Record<string, Record<string, number>> }).actions['optimize'];
  assert.equal(rec?.['nprobe_before'], 16);
  assert.equal(rec?.['nprobe'], nprobe);
  assert.ok((rec?.['recall_at_10'] ?? 0) >= target);
  assert.deepEqual(temporaries(tunedPath), []);

  // Now the nprobe is the smallest: nothing to do, and a run changes nothing.
  const again = await action('faiss-optimize').plan(ctx, { index: 'tuned' });
  assert.equal(again.nothingToDo, true, again.summary);
  assert.match(again.summary, new RegExp(`nprobe ${nprobe} of 16 lists is already the smallest whose recall@10 \\([\\d.]+\\) meets the target`));
  const rerun = await action('faiss-optimize').run(ctx, { index: 'tuned' }, AbortSignal.timeout(60_000));
  assert.equal(rerun.details?.['optimized'], false, rerun.summary);
  assert.equal((await fileSha256(tunedPath)).sha256, live.sha256);
  assert.equal(sidecarTimes(tunedPath).get('optimize'), times.get('optimize'));
  assert.deepEqual(temporaries(tunedPath), []);
});

test('faiss-optimize raises a too-low nprobe to the smallest that meets the floor', async () => {
  const optimal = (await nprobeOf(tunedPath)) as number;
  await setNprobe(tunedPath, 1);
  const low = await spreadRecall(tunedPath);
  assert.ok(low < 0.9, `nprobe 1 misses the floor: ${low}`);
  const { plan, result, verdict } = await runAction('faiss-optimize', { index: 'tuned' });
  assert.match(plan.summary, new RegExp(`nprobe 1 → ${optimal} of 16 lists`));
  assert.ok(verdict.fixed, verdict.detail);
  assert.equal(result.details?.['nprobe_before'], 1);
  assert.equal(await nprobeOf(tunedPath), optimal, 'the same sample as from above, so the same nprobe');
  assert.ok((await spreadRecall(tunedPath)) >= 0.9);
  assert.ok((await idsMatch(idsPath(tunedPath), await fileSha256(tunedPath), SPREAD_ROWS)).ok);
  assert.equal(await nprobeOf(prevPath(tunedPath)), 1, 'the low one is the previous generation');
});

test('faiss-optimize: a flat index has no nprobe, nothing to do and nothing written', async () => {
  const flat = new faiss.IndexFlatL2(SPREAD_DIM);
  flat.add(spread.flatMap((r) => r.v));
  flat.write(plainPath);
  const before = await fileSha256(plainPath);
  const plan = await action('faiss-optimize').plan(ctx, { index: 'plain' });
  assert.equal(plan.nothingToDo, true);
  assert.match(plan.summary, /FAISS index "plain" is IndexFlatL2, not an IVF index: it has no nprobe to tune: nothing to optimize/);
  const r = await action('faiss-optimize').run(ctx, { index: 'plain' }, AbortSignal.timeout(60_000));
  assert.equal(r.details?.['optimized'], false);
  assert.equal((await fileSha256(plainPath)).sha256, before.sha256);
  assert.equal(existsSync(sidecarPath(plainPath)), false);
  assert.deepEqual(temporaries(plainPath), []);
});

test('faiss-optimize on a broken index or map: nothing to do, pointing at faiss-restore; a run fails and leaves the files as they were', async () => {
  const expectBroken = async (why: RegExp): Promise<void> => {
    const index = await fileSha256(brokenPath).catch(() => undefined);
    const map = await fileSha256(idsPath(brokenPath)).catch(() => undefined);
    const plan = await action('faiss-optimize').plan(ctx, { index: 'broken' });
    assert.equal(plan.nothingToDo, true, plan.summary);
    assert.match(plan.summary, why);
    assert.match(plan.summary, /faiss-restore replaces a broken index/);
    await assert.rejects(action('faiss-optimize').run(ctx, { index: 'broken' }, AbortSignal.timeout(60_000)), (err: Error) => why.test(err.message) && /faiss-restore/.test(err.message));
    assert.deepEqual(await fileSha256(brokenPath).catch(() => undefined), index, 'the live index is byte for byte as it was');
    assert.deepEqual(await fileSha256(idsPath(brokenPath)).catch(() => undefined), map, 'so is its map');
    assert.equal(existsSync(prevPath(brokenPath)), false, 'nothing published');
    assert.equal(existsSync(sidecarPath(brokenPath)), false, 'nothing recorded');
    assert.deepEqual(temporaries(brokenPath), []);
  };
  // Truncated to half: the header reads as IVF, the lists run past the end of the file.
  const good = readFileSync(tunedPath);
  writeFileSync(brokenPath, good.subarray(0, good.length >> 1));
  await expectBroken(/the live index does not load: truncated or corrupt/);
  // A whole index with a map of another generation (the tuned index's previous one).
  copyFileSync(tunedPath, brokenPath);
  copyFileSync(prevIdsPath(tunedPath), idsPath(brokenPath));
  await expectBroken(/its id map does not match it \(the id map belongs to another generation of the index\)/);
  rmSync(brokenPath);
  rmSync(idsPath(brokenPath));
  await expectBroken(/the live index is missing/);
});

/** The pid of this process's FAISS check child while one runs. */
function checkChild(): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('check-child')) return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

test('faiss-optimize killed or aborted mid-way leaves the live index, its map and the sidecar as they were', async () => {
  await setNprobe(tunedPath, 16); // a run would publish
  const files = [tunedPath, idsPath(tunedPath), prevPath(tunedPath), prevIdsPath(tunedPath)];
  const hashes = async (): Promise<string[]> => Promise.all(files.map(async (f) => (await fileSha256(f)).sha256));
  const before = await hashes();
  const sidecar = readFileSync(sidecarPath(tunedPath), 'utf8');
  const untouched = async (): Promise<void> => {
    assert.deepEqual(await hashes(), before, 'the live index, its map and the previous pair are byte for byte as they were');
    assert.equal(readFileSync(sidecarPath(tunedPath), 'utf8'), sidecar, 'nothing recorded');
    assert.equal(await nprobeOf(tunedPath), 16);
    assert.equal(load(tunedPath).ntotal(), SPREAD_ROWS);
    await until('the temporary copy to be removed', () => temporaries(tunedPath).length === 0, 200, 10);
  };

  const killed = action('faiss-optimize').run(ctx, { index: 'tuned' }, AbortSignal.timeout(120_000));
  killed.catch(() => {}); // asserted below
  const pid = await until('the check process to measure', () => checkChild(), 10_000, 1);
  process.kill(pid, 'SIGKILL');
  await assert.rejects(killed, /check process killed by SIGKILL/);
  await untouched();

  const ac = new AbortController();
  const aborted = action('faiss-optimize').run(ctx, { index: 'tuned' }, ac.signal);
  aborted.catch(() => {});
  await until('the measurement to start', () => checksRunning() > 0, 10_000, 1);
  ac.abort(new Error('test: stop the optimize'));
  await assert.rejects(aborted, /test: stop the optimize/);
  await until('the check process to be gone', () => checksRunning() === 0 && checkChild() === undefined);
  await untouched();

  // And the next run completes.
  const { verdict } = await runAction('faiss-optimize', { index: 'tuned' });
  assert.ok(verdict.fixed, verdict.detail);
  const optimal = (await nprobeOf(tunedPath)) as number;
  assert.ok(optimal < 16);

  // A crash between that publish's two renames (the new map live, the old index still live):
  // not broken, the run repairs the map first, then optimizes the old index.
  copyFileSync(prevPath(tunedPath), tunedPath);
  assert.equal((await idsMatch(idsPath(tunedPath), await fileSha256(tunedPath))).ok, false);
  const crashed = await runAction('faiss-optimize', { index: 'tuned' });
  assert.match(crashed.plan.summary, new RegExp(`nprobe 16 → ${optimal} of 16 lists`));
  assert.match(String(crashed.result.details?.['repaired']), /restored tuned.index.ids from tuned.index.prev.ids/);
  assert.ok(crashed.verdict.fixed, crashed.verdict.detail);
  assert.equal(await nprobeOf(tunedPath), optimal);
  // The publish after that repair kept the map that already was a link of the previous one: no temporary left.
  assert.deepEqual(temporaries(tunedPath), []);
});

test('faiss-restore: nothing to do while the index is healthy; a corrupt index comes back from the newest backup', async () => {
  const healthy = await action('faiss-restore').plan(ctx, { index: 'docs' });
  assert.equal(healthy.nothingToDo, true, healthy.summary);

  const backup = await runAction('backup-run', { vector_index: 'docs' });
  assert.ok(backup.verdict.fixed, backup.verdict.detail);
  const good = await fileSha256(docsPath);
  // Corruption: the live file truncated to half.
  const bytes = readFileSync(docsPath);
  writeFileSync(docsPath, bytes.subarray(0, bytes.length >> 1));
  assert.throws(() => load(docsPath));

  const { plan, result, verdict } = await runAction('faiss-restore', { index: 'docs' });
  assert.notEqual(plan.nothingToDo, true);
  assert.match(plan.summary, /restore FAISS index "docs" from the newest passing of 1 backup/);
  assert.equal(result.details?.['restored'], true, result.summary);
  assert.ok(verdict.fixed, verdict.detail);
  assert.equal((await fileSha256(docsPath)).sha256, good.sha256, 'the backed-up generation is live again');
  assert.equal(load(docsPath).ntotal(), ROWS);
  await assertMapsBack(docsPath, 100);
  assert.equal(readFileSync(prevPath(docsPath)).length, bytes.length >> 1, 'the broken file is kept as the previous generation');
  assert.deepEqual(temporaries(docsPath), []);
});

test('faiss-restore without a backup falls back to a rebuild from the source table', async () => {
  writeFileSync(lonelyPath, 'not a FAISS index at all');
  const { plan, result, verdict } = await runAction('faiss-restore', { index: 'lonely' });
  assert.match(plan.summary, /no backup to restore FAISS index "lonely" from .*else rebuild from the source table/);
  assert.equal(result.details?.['rebuilt'], true, result.summary);
  assert.ok(verdict.fixed, verdict.detail);
  assert.equal(load(lonelyPath).ntotal(), ROWS);
  await assertMapsBack(lonelyPath, 50);
  // With the fallback off, the same situation is a failure that leaves the file alone.
  rmSync(lonelyPath);
  await assert.rejects(action('faiss-restore').run(ctx, { index: 'lonely', fallback: 'none' }, AbortSignal.timeout(60_000)), /no usable backup/);
  assert.equal(existsSync(lonelyPath), false);
});

test('the FAISS collector reports the new rebuild time through /metrics', async () => {
  const svc: Service = await startService(yaml);
  try {
    const T = { target: 'docs' };
    await scrapeUntil(svc, 'the first check of docs', (b) => value(b, 'faiss_index_vectors', T) === ROWS);
    const before = sidecarTimes(docsPath).get('rebuild') as number;
    const { verdict } = await runAction('faiss-rebuild', { index: 'docs' });
    assert.ok(verdict.fixed, verdict.detail);
    const at = sidecarTimes(docsPath).get('rebuild') as number;
    assert.ok(at > before);
    const body = await scrapeUntil(svc, 'the new rebuild time', (b) => value(b, 'faiss_index_last_maintenance_timestamp_seconds', { ...T, action: 'rebuild' }) === at);
    assert.equal(value(body, 'faiss_index_last_maintenance_timestamp_seconds', { ...T, action: 'retrain' }), sidecarTimes(docsPath).get('retrain'));
    await scrapeUntil(svc, 'the check of the new file', (b) => value(b, 'faiss_index_vectors', T) === ROWS && value(b, 'faiss_index_loadable', T) === 1);
  } finally {
    await svc.close();
  }
});

test('through the engine: an alert runs faiss-rebuild, a schedule runs faiss-retrain; both logged as fixed', async () => {
  await su.query('CREATE DATABASE hk_state');
  const rules = `
rules:
  - name: rebuild-on-low-recall
    matchers: ['alertname="FaissRecallLow"', 'remediation="faiss-rebuild"']
    action: faiss-rebuild
    params: { index: "{{ $labels.target }}" }
    max_attempts: 1
    allow_outside_windows: true
schedules:
  - name: retrain-every-two-seconds
    cron: "*/2 * * * * *"
    timezone: America/Los_Angeles
    action: faiss-retrain
    params: { index: docs, train_size: 1000 }
    max_attempts: 1
    allow_outside_windows: true
`;
  const inst = await startInstance(`${yaml}\nstate: { url: "${primary.url({ db: 'hk_state' })}" }\nremediation:\n  rules_dir: ${rulesDir(rules)}\n`, actions);
  try {
    const entries = async (q: string): Promise<Array<Record<string, unknown>>> => {
      const r = await fetch(`${inst.url}/api/remediations${q}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(r.status, 200);
      return ((await r.json()) as { items: Array<Record<string, unknown>> }).items;
    };
    const before = sidecarTimes(gatedPath).get('rebuild') as number;
    assert.equal((await inst.post(notification([{ labels: { alertname: 'FaissRecallLow', remediation: 'faiss-rebuild', target: 'gated' } }]))).status, 202);
    const rebuilt = await engineUntil('faiss-rebuild logged', async () => (await entries('?action=faiss-rebuild')).find((e) => e['outcome'] !== 'running'), 120_000);
    assert.equal(rebuilt['outcome'], 'fixed', JSON.stringify(rebuilt));
    assert.equal(rebuilt['target'], 'faiss:gated');
    assert.ok((sidecarTimes(gatedPath).get('rebuild') as number) > before, 'a new generation was published and recorded');
    assert.equal(load(gatedPath).ntotal(), ROWS);
    const retrained = await engineUntil(
      'scheduled faiss-retrain logged',
      async () => (await entries('?action=faiss-retrain')).find((e) => e['outcome'] === 'fixed' && e['trigger'] === 'schedule'),
      120_000,
    );
    assert.equal(retrained['rule'], 'retrain-every-two-seconds');
    outputs.push(await entries(''), inst.lines);
  } finally {
    await inst.close();
  }
  // A scheduled retrain cut short by the shutdown is killed, not left running.
  await until('no build left running', () => buildsInProgress().length === 0);
  assert.deepEqual(temporaries(docsPath), []);
  assert.equal(load(docsPath).ntotal(), ROWS);
});

test('through the engine: a schedule runs faiss-optimize (fixed), and the next finds nothing to do (skipped)', async () => {
  await setNprobe(tunedPath, 16);
  const recordedBefore = sidecarTimes(tunedPath).get('optimize') as number;
  await su.query('CREATE DATABASE hk_state_optimize');
  const rules = `
schedules:
  - name: optimize-every-two-seconds
    cron: "*/2 * * * * *"
    timezone: America/Los_Angeles
    action: faiss-optimize
    params: { index: tuned }
    max_attempts: 1
`;
  const inst = await startInstance(`${yaml}\nstate: { url: "${primary.url({ db: 'hk_state_optimize' })}" }\nremediation:\n  rules_dir: ${rulesDir(rules)}\n`, actions);
  try {
    const entries = async (): Promise<Array<Record<string, unknown>>> => {
      const r = await fetch(`${inst.url}/api/remediations?action=faiss-optimize`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(r.status, 200);
      return ((await r.json()) as { items: Array<Record<string, unknown>> }).items;
    };
    const fixed = await engineUntil('a scheduled faiss-optimize logged as fixed', async () => (await entries()).find((e) => e['outcome'] === 'fixed'), 120_000);
    assert.equal(fixed['trigger'], 'schedule');
    assert.equal(fixed['rule'], 'optimize-every-two-seconds');
    assert.equal(fixed['target'], 'faiss:tuned');
    const skipped = await engineUntil('a later scheduled run with nothing to do', async () => (await entries()).find((e) => e['outcome'] === 'skipped'), 60_000);
    assert.match(String(skipped['reason']), /already the smallest/);
    outputs.push(await entries(), inst.lines);
  } finally {
    await inst.close();
  }
  assert.ok(((await nprobeOf(tunedPath)) as number) < 16);
  assert.ok((sidecarTimes(tunedPath).get('optimize') as number) > recordedBefore, 'the scheduled run recorded its optimize');
  assert.ok((await idsMatch(idsPath(tunedPath), await fileSha256(tunedPath), SPREAD_ROWS)).ok);
  await until('no check running', () => checksRunning() === 0);
  await until('no temporary file left', () => temporaries(tunedPath).length === 0);
});

test('no password in any result, plan, verdict, log line or file the actions wrote', () => {
  const secrets = [primary.superPassword];
  const texts: [string, string][] = [['outputs', JSON.stringify(outputs)], ['action log', logLines.join('\n')]];
  for (const p of [docsPath, gatedPath, lonelyPath, mixedPath, tunedPath, plainPath]) {
    const dir = join(p, '..');
    for (const n of readdirSync(dir)) if (n.endsWith('.json')) texts.push([n, readFileSync(join(dir, n), 'utf8')]);
  }
  assert.ok(logLines.some((l) => l.includes('FAISS index rebuilt')), 'the actions did log');
  for (const [where, text] of texts) for (const s of secrets) assert.ok(!text.includes(s), `no secret in ${where}`);
});
