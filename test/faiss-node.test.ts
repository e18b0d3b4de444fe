// The real faiss-node, built against Debian's libfaiss by scripts/build-faiss-node.sh:
// flat and IVF indexes, search, file and buffer round trips, and a truncated file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import faiss from 'faiss-node';
import type { Index } from 'faiss-node';
import { randomVectors } from './helpers/faiss.ts';

const DIM = 16;
const COUNT = 400;

function row(vectors: number[], i: number): number[] {
  return vectors.slice(i * DIM, (i + 1) * DIM);
}

/** Every probed stored vector must come back as its own nearest neighbour, at distance 0. */
function assertFindsItself(index: Index, vectors: number[], rows: number[]): void {
  const queries = rows.flatMap((i) => row(vectors, i));
  const { labels, distances } = index.search(queries, 3);
  assert.equal(labels.length, rows.length * 3);
  rows.forEach((i, q) => {
    assert.equal(labels[q * 3], i, `row ${i} is its own nearest neighbour`);
    assert.ok(Math.abs(distances[q * 3] ?? NaN) < 1e-4, `row ${i} is at distance 0`);
  });
}

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'housekeeper-faiss-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const PROBE_ROWS = [0, 1, 17, 199, COUNT - 1];

test('IndexFlatL2: add, search, write to a file and read it back', () => withTempDir((dir) => {
  const vectors = randomVectors(COUNT, DIM, 1);
  const index = new faiss.IndexFlatL2(DIM);
  assert.equal(index.getDimension(), DIM);
  assert.equal(index.isTrained(), true);
  index.add(vectors);
  assert.equal(index.ntotal(), COUNT);
  assertFindsItself(index, vectors, PROBE_ROWS);

  const file = join(dir, 'flat.index');
  index.write(file);
  const back = faiss.IndexFlatL2.read(file);
  assert.equal(back.ntotal(), COUNT);
  assert.equal(back.getDimension(), DIM);
  assertFindsItself(back, vectors, PROBE_ROWS);
  // Same answers as the original for a fresh query.
  const query = randomVectors(1, DIM, 99);
  assert.deepEqual(back.search(query, 5), index.search(query, 5));
}));

test('IVF from the index factory: train, add, search, file and buffer round trips', () => withTempDir((dir) => {
  const vectors = randomVectors(COUNT, DIM, 2);
  const index = faiss.Index.fromFactory(DIM, 'IVF8,Flat', faiss.MetricType.METRIC_L2);
  assert.equal(index.isTrained(), false);
  // Adding to an untrained IVF index aborts the process (uncaught FaissException): train first.
  index.train(vectors);
  assert.equal(index.isTrained(), true);
  index.add(vectors);
  assert.equal(index.ntotal(), COUNT);
  assertFindsItself(index, vectors, PROBE_ROWS);

  const file = join(dir, 'ivf.index');
  index.write(file);
  const fromFile = faiss.Index.read(file);
  assert.equal(fromFile.ntotal(), COUNT);
  assert.equal(fromFile.isTrained(), true);
  assertFindsItself(fromFile, vectors, PROBE_ROWS);

  const buffer = index.toBuffer();
  assert.deepEqual(buffer, readFileSync(file), 'toBuffer gives the bytes write() puts in the file');
  const fromBuffer = faiss.Index.fromBuffer(buffer);
  assert.equal(fromBuffer.ntotal(), COUNT);
  assertFindsItself(fromBuffer, vectors, PROBE_ROWS);
}));

test('reading a truncated or missing index file throws an Error instead of crashing', () => withTempDir((dir) => {
  const index = new faiss.IndexFlatL2(DIM);
  index.add(randomVectors(COUNT, DIM, 3));
  const file = join(dir, 'whole.index');
  index.write(file);
  const bytes = readFileSync(file);

  const truncated = join(dir, 'truncated.index');
  for (const length of [0, 10, Math.floor(bytes.length / 2), bytes.length - 1]) {
    writeFileSync(truncated, bytes.subarray(0, length));
    assert.throws(() => faiss.IndexFlatL2.read(truncated), /read error/, `file cut to ${length} bytes`);
    assert.throws(() => faiss.Index.read(truncated), /read error/, `file cut to ${length} bytes`);
    assert.throws(() => faiss.Index.fromBuffer(bytes.subarray(0, length)), /read error/);
  }
  assert.throws(() => faiss.Index.read(join(dir, 'missing.index')), /could not open/);
  // The process is still fine and the intact file still reads.
  assert.equal(faiss.IndexFlatL2.read(file).ntotal(), COUNT);
}));
