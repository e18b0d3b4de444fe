// The FAISS collector against real index files built here with faiss-node (flat, IVF-Flat
// at three nprobe settings, HNSW), a truncated file, a file whose header makes FAISS abort,
// a missing file, and real source tables in Postgres 15. Everything is read back through
// /metrics of a listening service.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, ftruncateSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import faiss from 'faiss-node';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { find, scrapeUntil, startService, value, type Service } from './helpers/service.ts';
import { flatIndex, ivfImage, ivfIndex, randomVectors, writeAtomically } from './helpers/faiss.ts';
import { readLayout, LayoutError, type ByteReader } from '../src/faiss/format.ts';
import { parseSidecar, recordMaintenance, sidecarPath } from '../src/faiss/sidecar.ts';
import { checksRunning } from '../src/faiss/checker.ts';
import { until } from './helpers/wait.ts';

const DIM = 32;
const COUNT = 2000;
const NLIST = 32;
const SOURCE_ROWS = 2500;
const DOC_ROWS = 1800;

let dir: string;
let primary: PgServer;
let svc: Service;
let firstBody: string;
const path = (name: string): string => join(dir, `${name}.index`);

/**
 * SQL as the superuser on a connection of its own, closed before returning. (A pg.Pool's
 * end() resolves before its sockets have closed, so a server stopped right after could
 * still kill one of them and raise an error nobody listens to.)
 */
async function sql<R extends pg.QueryResultRow>(text: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: primary.url({ db: 'app' }) });
  await c.connect();
  try {
    return (await c.query<R>(text)).rows;
  } finally {
    await c.end();
  }
}

/** The body once every listed index has a finished check (bounded wait, no sleeps asserted). */
function allChecked(names: string[]): (body: string) => boolean {
  return (body) => names.every((target) => value(body, 'faiss_index_check_timestamp_seconds', { target }) !== undefined);
}

const INDEXES = ['flat', 'ivf_p1', 'ivf_p8', 'ivf_p32', 'hnsw', 'truncated', 'huge_count', 'missing', 'changing', 'no_table', 'wrong_type', 'injection'];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hk-faiss-'));
  const vectors = randomVectors(COUNT, DIM, 1);
  flatIndex(vectors, DIM).write(path('flat'));
  const ivf = ivfIndex(vectors, DIM, NLIST);
  for (const nprobe of [1, 8, 32]) writeFileSync(path(`ivf_p${nprobe}`), ivfImage(ivf, nprobe));
  const hnsw = faiss.Index.fromFactory(DIM, 'HNSW16', faiss.MetricType.METRIC_L2);
  hnsw.add(vectors);
  hnsw.write(path('hnsw'));
  const full = readFileSync(path('ivf_p8'));
  writeFileSync(path('truncated'), full.subarray(0, Math.floor(full.length / 2)));
  // A flat index whose float count claims 2^39 floats (2 TB). Given to FAISS, its reader
  // would allocate that first: std::bad_alloc, which aborts the process that read it (or,
  // where memory is overcommitted, a 2 TB zero-fill and the OOM killer).
  const huge = Buffer.from(readFileSync(path('flat')));
  huge.writeBigUInt64LE(1n << 39n, 37);
  writeFileSync(path('huge_count'), huge);
  copyFileSync(path('flat'), path('changing'));

  primary = await startPostgres();
  const setup: string[] = [
    `CREATE TABLE embeddings (id bigint PRIMARY KEY, embedding real[])`,
    `INSERT INTO embeddings SELECT g, ARRAY(SELECT random()::real FROM generate_series(1, ${DIM})) FROM generate_series(1, ${SOURCE_ROWS}) g`,
    // Rows without a vector are not "missing from the index": they are not counted.
    `INSERT INTO embeddings SELECT g, NULL FROM generate_series(${SOURCE_ROWS + 1}, ${SOURCE_ROWS + 7}) g`,
    // Mixed case and a space: only correct quoting reaches it.
    `CREATE TABLE "Doc Vectors" ("Id" int PRIMARY KEY, "Embedding" double precision[])`,
    `INSERT INTO "Doc Vectors" SELECT g, ARRAY[g, g]::float8[] FROM generate_series(1, ${DOC_ROWS}) g`,
    `CREATE TABLE wrong_type (id int PRIMARY KEY, embedding text)`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA public TO housekeeper`,
  ];
  for (const text of setup) await sql(text);
  const source = (table: string, id = 'id', vector = 'embedding'): string =>
    `{ target: primary, table: ${JSON.stringify(table)}, id_column: ${JSON.stringify(id)}, vector_column: ${JSON.stringify(vector)} }`;
  svc = await startService(`
collectors:
  disabled: [postgres]
postgres:
  - name: primary
    url: ${primary.url({ db: 'app', user: 'housekeeper' })}
faiss:
  - { name: flat, path: ${path('flat')}, check_interval: 1h, source: ${source('embeddings')} }
  - { name: ivf_p1, path: ${path('ivf_p1')}, check_interval: 1h, recall_sample: 200 }
  - { name: ivf_p8, path: ${path('ivf_p8')}, check_interval: 1h, recall_sample: 200, recall_floor: 0.95, source: ${source('public."Doc Vectors"', 'Id', 'Embedding')} }
  - { name: ivf_p32, path: ${path('ivf_p32')}, check_interval: 1h, recall_sample: 200 }
  - { name: hnsw, path: ${path('hnsw')}, check_interval: 1h }
  - { name: truncated, path: ${path('truncated')}, check_interval: 1h }
  - { name: huge_count, path: ${path('huge_count')}, check_interval: 1h }
  - { name: missing, path: ${path('missing')}, check_interval: 1h, source: ${source('embeddings')} }
  - { name: changing, path: ${path('changing')}, check_interval: 1h }
  - { name: no_table, path: ${path('flat')}, check_interval: 1h, source: ${source('no_such_table')} }
  - { name: wrong_type, path: ${path('flat')}, check_interval: 1h, source: ${source('wrong_type')} }
  - { name: injection, path: ${path('flat')}, check_interval: 1h, source: ${source('embeddings; DROP TABLE embeddings')} }
`);
  // The very first scrape: it only starts the checks, it does not wait for them.
  const first = await svc.scrape();
  assert.equal(first.status, 200);
  firstBody = first.body;
});

after(async () => {
  await svc?.close();
  await primary?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the first scrape answers at once with what a stat can tell', () => {
  for (const target of INDEXES) assert.equal(value(firstBody, 'housekeeper_collector_success', { collector: 'faiss', target }), 1, target);
  assert.equal(value(firstBody, 'faiss_index_file_size_bytes', { target: 'flat' }), statSync(path('flat')).size);
  assert.equal(value(firstBody, 'faiss_index_loadable', { target: 'missing' }), 0, 'a missing file is not loadable, known without a check');
  assert.equal(value(firstBody, 'faiss_index_recall_floor', { target: 'flat' }), 0.9);
});

test('flat index: counts, type, exact recall, probe latency, file facts, source rows and gap', async () => {
  const body = await scrapeUntil(svc, 'every check done', allChecked(INDEXES), 60_000);
  const t = { target: 'flat' };
  assert.equal(value(body, 'faiss_index_loadable', t), 1);
  assert.equal(value(body, 'faiss_index_check_success', t), 1);
  assert.equal(value(body, 'faiss_index_vectors', t), COUNT);
  assert.equal(value(body, 'faiss_index_dimension', t), DIM);
  assert.equal(value(body, 'faiss_index_trained', t), 1);
  assert.equal(value(body, 'faiss_index_info', { ...t, type: 'IndexFlatL2', metric: 'l2' }), 1);
  assert.equal(find(body, 'faiss_index_info', t).length, 1);
  // A flat index is exact search: its recall is 1 by definition.
  assert.equal(value(body, 'faiss_index_recall_at_10', t), 1);
  assert.equal(value(body, 'faiss_index_recall_queries', t), 100);
  assert.equal(value(body, 'faiss_index_recall_floor', t), 0.9);
  assert.equal(value(body, 'faiss_index_ivf_lists', t), undefined, 'not an IVF index');
  const latency = value(body, 'faiss_index_probe_latency_seconds', t);
  assert.ok(latency !== undefined && latency > 0, `probe latency ${latency}`);
  const st = statSync(path('flat'));
  assert.equal(value(body, 'faiss_index_file_size_bytes', t), st.size);
  assert.equal(value(body, 'faiss_index_file_modified_timestamp_seconds', t), st.mtimeMs / 1000);
  assert.ok((value(body, 'faiss_index_check_duration_seconds', t) ?? -1) > 0);
  assert.equal(value(body, 'faiss_index_check_running', t), 0);
  assert.equal(value(body, 'faiss_index_source_check_success', t), 1);
  assert.equal(value(body, 'faiss_index_source_rows', t), SOURCE_ROWS, 'rows with a vector; NULLs not counted');
  assert.equal(value(body, 'faiss_index_source_gap', t), SOURCE_ROWS - COUNT);
  assert.equal(value(body, 'faiss_index_last_maintenance_timestamp_seconds', t), undefined, 'no sidecar, no maintenance time');
});

test('IVF: lists and nprobe from the file; recall rises with nprobe and is exact when every list is probed', async () => {
  const body = await scrapeUntil(svc, 'every check done', allChecked(INDEXES), 60_000);
  const recall: Record<number, number> = {};
  for (const nprobe of [1, 8, 32]) {
    const t = { target: `ivf_p${nprobe}` };
    assert.equal(value(body, 'faiss_index_loadable', t), 1);
    assert.equal(value(body, 'faiss_index_info', { ...t, type: 'IndexIVFFlat', metric: 'l2' }), 1);
    assert.equal(value(body, 'faiss_index_vectors', t), COUNT);
    assert.equal(value(body, 'faiss_index_ivf_lists', t), NLIST);
    assert.equal(value(body, 'faiss_index_ivf_probes', t), nprobe);
    assert.equal(value(body, 'faiss_index_recall_queries', t), 200);
    recall[nprobe] = value(body, 'faiss_index_recall_at_10', t) as number;
  }
  assert.equal(recall[32], 1, 'probing all 32 lists is exhaustive search');
  assert.ok((recall[1] as number) < (recall[8] as number), `recall nprobe 1 (${recall[1]}) < nprobe 8 (${recall[8]})`);
  assert.ok((recall[8] as number) < 1 && (recall[1] as number) > 0, `recalls ${JSON.stringify(recall)}`);
  assert.equal(value(body, 'faiss_index_recall_floor', { target: 'ivf_p8' }), 0.95);
  // Source in a quoted, mixed-case table with double precision[]: fewer rows than vectors.
  assert.equal(value(body, 'faiss_index_source_rows', { target: 'ivf_p8' }), DOC_ROWS);
  assert.equal(value(body, 'faiss_index_source_gap', { target: 'ivf_p8' }), DOC_ROWS - COUNT);
  assert.equal(value(body, 'faiss_index_source_rows', { target: 'ivf_p1' }), undefined, 'no source configured');
  // HNSW: its stored vectors are readable too, so recall is measured.
  assert.equal(value(body, 'faiss_index_info', { target: 'hnsw', type: 'IndexHNSWFlat', metric: 'l2' }), 1);
  const hnsw = value(body, 'faiss_index_recall_at_10', { target: 'hnsw' }) as number;
  assert.ok(hnsw > 0 && hnsw <= 1, `hnsw recall ${hnsw}`);
});

test('a truncated file is not loadable; the check and the scrape still succeed', async () => {
  const body = await scrapeUntil(svc, 'every check done', allChecked(INDEXES), 60_000);
  const t = { target: 'truncated' };
  assert.equal(value(body, 'faiss_index_loadable', t), 0);
  assert.equal(value(body, 'faiss_index_check_success', t), 1);
  assert.equal(value(body, 'faiss_index_file_size_bytes', t), statSync(path('truncated')).size);
  assert.equal(value(body, 'faiss_index_vectors', t), undefined);
  assert.equal(find(body, 'faiss_index_info', t).length, 0);
  assert.equal(value(body, 'housekeeper_collector_success', { collector: 'faiss', target: 'truncated' }), 1);
  assert.ok(svc.lines.some((l) => l.includes('FAISS index does not load') && l.includes('"target":"truncated"') && l.includes('run past the end of the file')));
});

test('a count that runs past the end of the file is caught before FAISS would allocate it', async () => {
  const body = await scrapeUntil(svc, 'every check done', allChecked(INDEXES), 60_000);
  const t = { target: 'huge_count' };
  assert.equal(value(body, 'faiss_index_loadable', t), 0);
  assert.equal(value(body, 'faiss_index_check_success', t), 1, 'a completed check: nothing crashed');
  assert.equal(value(body, 'faiss_index_vectors', t), undefined);
  assert.ok(svc.lines.some((l) => l.includes('"target":"huge_count"') && l.includes('truncated or corrupt') && l.includes('549755813888 items of 4 bytes')));
});

test('a missing file: not loadable, no file facts, source rows still counted', async () => {
  const body = await scrapeUntil(svc, 'every check done', allChecked(INDEXES), 60_000);
  const t = { target: 'missing' };
  assert.equal(value(body, 'faiss_index_loadable', t), 0);
  assert.equal(value(body, 'faiss_index_check_success', t), 1);
  assert.equal(value(body, 'faiss_index_file_size_bytes', t), undefined);
  assert.equal(value(body, 'faiss_index_file_modified_timestamp_seconds', t), undefined);
  assert.equal(value(body, 'faiss_index_source_rows', t), SOURCE_ROWS);
  assert.equal(value(body, 'faiss_index_source_gap', t), undefined, 'no vectors to compare with');
  assert.equal(value(body, 'housekeeper_collector_success', { collector: 'faiss', target: 'missing' }), 1);
});

test('source names are checked against the catalog: unknown table, wrong type and injection fail safely', async () => {
  const body = await scrapeUntil(svc, 'every check done', allChecked(INDEXES), 60_000);
  for (const target of ['no_table', 'wrong_type', 'injection']) {
    assert.equal(value(body, 'faiss_index_source_check_success', { target }), 0, target);
    assert.equal(value(body, 'faiss_index_source_rows', { target }), undefined, target);
    // The index itself is checked regardless.
    assert.equal(value(body, 'faiss_index_loadable', { target }), 1, target);
  }
  assert.ok(svc.lines.some((l) => l.includes('"target":"no_table"') && l.includes('not found')));
  assert.ok(svc.lines.some((l) => l.includes('"target":"wrong_type"') && l.includes('is text, expected real[]')));
  const rows = await sql<{ n: string }>('SELECT count(*) AS n FROM embeddings');
  assert.equal(Number(rows[0]?.n), SOURCE_ROWS + 7, 'the table named in the "injection" is intact');
});

test('a change of the file (size/mtime) triggers a re-check well before check_interval (1h)', async () => {
  const t = { target: 'changing' };
  let body = await scrapeUntil(svc, 'first check of "changing"', (b) => value(b, 'faiss_index_vectors', t) === COUNT, 60_000);
  const firstCheck = value(body, 'faiss_index_check_timestamp_seconds', t) as number;

  // Replaced atomically by a smaller index, as a rebuild would.
  writeAtomically(path('changing'), flatIndex(randomVectors(1500, DIM, 2), DIM).toBuffer());
  body = await scrapeUntil(svc, 're-check after replace', (b) => value(b, 'faiss_index_vectors', t) === 1500, 60_000);
  const secondCheck = value(body, 'faiss_index_check_timestamp_seconds', t) as number;
  assert.ok(secondCheck > firstCheck, 'a new check ran');
  assert.equal(value(body, 'faiss_index_file_size_bytes', t), statSync(path('changing')).size);

  // Truncated in place (same inode): size and mtime change, so it is checked again.
  const fd = openSync(path('changing'), 'r+');
  ftruncateSync(fd, 1000);
  closeSync(fd);
  body = await scrapeUntil(svc, 're-check after truncation', (b) => value(b, 'faiss_index_loadable', t) === 0, 60_000);
  assert.equal(value(body, 'faiss_index_vectors', t), undefined);
  assert.equal(value(body, 'faiss_index_file_size_bytes', t), 1000);

  // Restored (atomically, so the file has one identity while it is checked): loadable again.
  writeAtomically(path('changing'), readFileSync(path('flat')));
  body = await scrapeUntil(svc, 're-check after restore', (b) => value(b, 'faiss_index_loadable', t) === 1 && value(b, 'faiss_index_vectors', t) === COUNT, 60_000);
  assert.ok(svc.lines.some((l) => l.includes('FAISS index loads again') && l.includes('"target":"changing"')));
  // An unchanged file is not checked again within the interval.
  const settledAt = value(body, 'faiss_index_check_timestamp_seconds', t);
  for (let i = 0; i < 3; i++) body = (await svc.scrape()).body;
  assert.equal(value(body, 'faiss_index_check_timestamp_seconds', t), settledAt);
  assert.equal(value(body, 'faiss_index_check_running', t), 0);
});

test('maintenance times come from the sidecar that the rebuild action writes; an invalid one is ignored', async () => {
  const t = { target: 'ivf_p32' };
  await recordMaintenance(path('ivf_p32'), 'rebuild', { at: '2026-01-02T03:04:05Z', vectors: COUNT, dimension: DIM });
  await recordMaintenance(path('ivf_p32'), 'retrain', { at: '2026-02-03T04:05:06.500Z' });
  let body = await scrapeUntil(svc, 'sidecar read', (b) => value(b, 'faiss_index_last_maintenance_timestamp_seconds', { ...t, action: 'retrain' }) !== undefined);
  assert.equal(value(body, 'faiss_index_last_maintenance_timestamp_seconds', { ...t, action: 'rebuild' }), Date.UTC(2026, 0, 2, 3, 4, 5) / 1000);
  assert.equal(value(body, 'faiss_index_last_maintenance_timestamp_seconds', { ...t, action: 'retrain' }), Date.UTC(2026, 1, 3, 4, 5, 6, 500) / 1000);
  const written = JSON.parse(readFileSync(sidecarPath(path('ivf_p32')), 'utf8')) as { format: string; version: number; index_file: string };
  assert.deepEqual([written.format, written.version, written.index_file], ['housekeeper-faiss-sidecar', 1, 'ivf_p32.index']);

  writeFileSync(sidecarPath(path('ivf_p32')), '{"format":"housekeeper-faiss-sidecar","version":1,"index_file":"x","actions":{"rebuild":{"at":"yesterday"}}}');
  body = await scrapeUntil(svc, 'invalid sidecar dropped', (b) => find(b, 'faiss_index_last_maintenance_timestamp_seconds', t).length === 0);
  assert.ok(svc.lines.some((l) => l.includes('sidecar ignored') && l.includes('not a valid time')));
  assert.throws(() => parseSidecar('{"format":"other","version":1}'), /format/);
});

test('file layout reader: flat, IVF and HNSW found; a corrupt header is an error, never a wild allocation', () => {
  const reader = (buf: Buffer): ByteReader => ({ size: buf.length, read: (o, n) => buf.subarray(o, o + n) });
  const flat = readLayout(reader(readFileSync(path('flat'))));
  assert.deepEqual([flat.type, flat.header.ntotal, flat.header.dimension, flat.runs?.length], ['IndexFlatL2', COUNT, DIM, 1]);
  const ivf = readLayout(reader(readFileSync(path('ivf_p8'))));
  assert.deepEqual(ivf.ivf, { nlist: NLIST, nprobe: 8 });
  assert.equal(ivf.runs?.reduce((n, r) => n + r.count, 0), COUNT);
  const hnsw = readLayout(reader(readFileSync(path('hnsw'))));
  assert.equal(hnsw.runs?.reduce((n, r) => n + r.count, 0), COUNT);
  // The count that would make FAISS allocate 2 TB: our reader calls the file damaged.
  const bad = readLayout(reader(readFileSync(path('huge_count'))));
  assert.equal(bad.runs, undefined);
  assert.equal(bad.damaged, true);
  assert.match(bad.why ?? '', /run past the end of the file/);
  assert.equal(readLayout(reader(readFileSync(path('truncated')))).damaged, true);
  assert.equal(readLayout(reader(readFileSync(path('ivf_p8')))).damaged, false);
  assert.throws(() => readLayout(reader(Buffer.from('IxF2'))), LayoutError);
});

test('a scrape never waits for a check: a check stuck reading the file leaves /metrics answering', async () => {
  // A FIFO: FAISS's fopen blocks until someone opens it for writing, so this check cannot
  // finish until the test lets it. Deterministic, no timing involved.
  const fifo = join(dir, 'stuck.index');
  execFileSync('mkfifo', [fifo]);
  const stuck = await startService(`
faiss:
  - { name: stuck, path: ${fifo}, check_interval: 1h }
`);
  try {
    const t = { target: 'stuck' };
    const body = await scrapeUntil(stuck, 'check in progress', (b) => value(b, 'faiss_index_check_running', t) === 1);
    assert.equal(value(body, 'housekeeper_collector_success', { collector: 'faiss', target: 'stuck' }), 1);
    assert.equal(value(body, 'faiss_index_check_timestamp_seconds', t), undefined, 'no result: the check has not finished');
    for (let i = 0; i < 3; i++) {
      const again = await stuck.scrape();
      assert.equal(again.status, 200);
      assert.equal(value(again.body, 'faiss_index_check_running', t), 1);
    }
    // Release it: garbage, then end of file. FAISS's read fails; the check completes.
    const w = await open(fifo, 'w');
    await w.write(Buffer.from('not a faiss index'));
    await w.close();
    const done = await scrapeUntil(stuck, 'check finished', (b) => value(b, 'faiss_index_check_timestamp_seconds', t) !== undefined);
    assert.equal(value(done, 'faiss_index_loadable', t), 0);
    assert.equal(value(done, 'faiss_index_check_success', t), 1);
  } finally {
    await stuck.close();
  }
});

/** Pids of this process's children running the check script. */
function checkProcesses(): number[] {
  const kids = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return kids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('check-child.ts');
    } catch {
      return false;
    }
  });
}

test('a check process that aborts (what FAISS does on most errors) costs only that process', async () => {
  // The FIFO holds the check inside FAISS's read; SIGABRT is what std::terminate sends.
  const fifo = join(dir, 'stuck.index');
  const svc2 = await startService(`
faiss:
  - { name: crashes, path: ${fifo}, check_interval: 1h }
`);
  try {
    const t = { target: 'crashes' };
    await scrapeUntil(svc2, 'check in progress', (b) => value(b, 'faiss_index_check_running', t) === 1);
    // Wait (bounded) until the check process is blocked in FAISS's open of the FIFO: the
    // kernel shows it waiting for a writer.
    const pid = await until('the check process to reach FAISS\'s read', () =>
      checkProcesses().find((p) => {
        try {
          return readFileSync(`/proc/${p}/wchan`, 'utf8') === 'wait_for_partner';
        } catch {
          return false;
        }
      }), { timeoutMs: 30_000, intervalMs: 50 });
    process.kill(pid, 'SIGABRT');
    const body = await scrapeUntil(svc2, 'check over', (b) => value(b, 'faiss_index_check_timestamp_seconds', t) !== undefined);
    assert.equal(value(body, 'faiss_index_check_success', t), 0);
    // It died inside FAISS's read: the application would too, loading this file.
    assert.equal(value(body, 'faiss_index_loadable', t), 0);
    assert.equal(value(body, 'housekeeper_collector_success', { collector: 'faiss', target: 'crashes' }), 1);
    assert.ok(svc2.lines.some((l) => l.includes('"target":"crashes"') && l.includes('killed by SIGABRT while FAISS read the file')), 'the abort is logged');
    // The service that spawned it is alive and answers.
    assert.equal((await svc2.scrape()).status, 200);
    assert.equal((await svc.scrape()).status, 200);
    // The killed process could not remove its scratch directory; the checker did.
    for (const base of ['/dev/shm', tmpdir()]) {
      const left: string[] = existsSync(base) ? readdirSync(base).filter((n) => n.startsWith(`hk-faiss-check-${pid}-`)) : [];
      assert.deepEqual(left, [], `scratch of the killed check in ${base}`);
    }
  } finally {
    await svc2.close();
  }
});

test('shutdown kills a check in progress (the collector\'s close)', async () => {
  const fifo = join(dir, 'stuck.index'); // the FIFO of the test above: a new reader blocks again
  const stuck = await startService(`
faiss:
  - { name: stuck, path: ${fifo}, check_interval: 1h }
`);
  await scrapeUntil(stuck, 'check in progress', (b) => value(b, 'faiss_index_check_running', { target: 'stuck' }) === 1);
  await scrapeUntil(stuck, 'check process started', () => checksRunning() === 1);
  await stuck.close();
  assert.equal(checksRunning(), 0, 'close() returned after the check process was gone');
});

test('no check process is left behind once the checks are done', async () => {
  await scrapeUntil(svc, 'checks idle', (b) => INDEXES.every((target) => value(b, 'faiss_index_check_running', { target }) === 0));
  assert.equal(checksRunning(), 0);
});
