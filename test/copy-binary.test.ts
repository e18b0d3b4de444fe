import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CopyBinaryReader, type TupleView } from '../src/faiss/copy-binary.ts';

// The binary COPY framing the FAISS rebuild reads (the real server's output is exercised by
// test/actions-faiss.test.ts); here, every way a stream can be cut into chunks, and every
// malformed stream, against a stream built from the documented format.

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

function header(extension = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(0, 0); // flags
  b.writeUInt32BE(extension.length, 4);
  return Buffer.concat([SIGNATURE, b, extension]);
}

function tuple(fields: Array<Buffer | null>): Buffer {
  const parts: Buffer[] = [];
  const count = Buffer.alloc(2);
  count.writeInt16BE(fields.length);
  parts.push(count);
  for (const f of fields) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(f === null ? -1 : f.length);
    parts.push(len);
    if (f) parts.push(f);
  }
  return Buffer.concat(parts);
}

const TRAILER = Buffer.from([0xff, 0xff]);

function int8(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
}

/** What the reader saw: each tuple's fields as hex, or null. */
function readAll(chunks: Buffer[], fields = 2): Array<Array<string | null>> {
  const r = new CopyBinaryReader(fields);
  const seen: Array<Array<string | null>> = [];
  const take = (t: TupleView): void => {
    const row: Array<string | null> = [];
    for (let i = 0; i < fields; i++) {
      const len = t.length[i] as number;
      row.push(len < 0 ? null : t.buf.toString('hex', t.start[i] as number, (t.start[i] as number) + len));
    }
    seen.push(row);
  };
  for (const c of chunks) r.feed(c, take);
  r.end();
  return seen;
}

const rows: Array<Array<Buffer | null>> = [
  [int8(1n), Buffer.from('0102030405', 'hex')],
  [int8(-7n), null],
  [null, Buffer.alloc(0)],
  [int8(9007199254740993n), Buffer.alloc(300, 0xab)],
];
const expected = rows.map((r) => r.map((f) => (f === null ? null : f.toString('hex'))));
const whole = Buffer.concat([header(Buffer.from('ext!')), ...rows.map(tuple), TRAILER]);

test('one chunk: every tuple, NULLs and empty fields told apart, the header extension skipped', () => {
  assert.deepEqual(readAll([whole]), expected);
});

test('the stream cut at every byte gives the same tuples', () => {
  for (let cut = 1; cut < whole.length; cut++) {
    assert.deepEqual(readAll([whole.subarray(0, cut), whole.subarray(cut)]), expected, `cut at ${cut}`);
  }
});

test('the stream fed one byte at a time gives the same tuples', () => {
  const bytes = Array.from({ length: whole.length }, (_, i) => whole.subarray(i, i + 1));
  assert.deepEqual(readAll(bytes), expected);
});

test('an empty result is a header and a trailer', () => {
  assert.deepEqual(readAll([Buffer.concat([header(), TRAILER])]), []);
});

test('a stream that is not binary COPY is refused by its signature', () => {
  const text = Buffer.from('1\t{1,2,3}\n2\t{4,5,6}\n\\.\n');
  assert.throws(() => readAll([text]), /bad signature/);
});

test('a tuple with another field count than the query has is refused', () => {
  const s = Buffer.concat([header(), tuple([int8(1n)]), TRAILER]);
  assert.throws(() => readAll([s]), /a tuple has 1 fields, expected 2/);
});

test('a negative field length other than NULL is refused', () => {
  const t = tuple([int8(1n), Buffer.from('aa', 'hex')]);
  t.writeInt32BE(-5, 2 + 4 + 8);
  assert.throws(() => readAll([Buffer.concat([header(), t, TRAILER])]), /bad field length -5/);
});

test('a stream cut short, mid-tuple or before the trailer, fails at its end', () => {
  const noTrailer = Buffer.concat([header(), tuple(rows[0] as Array<Buffer | null>)]);
  assert.throws(() => readAll([noTrailer]), /COPY stream ended early \(0 bytes/);
  assert.throws(() => readAll([noTrailer.subarray(0, noTrailer.length - 3)]), /COPY stream ended early \(\d+ bytes/);
  assert.throws(() => readAll([header().subarray(0, 10)]), /COPY stream ended early/);
});

test('bytes after the trailer are refused', () => {
  assert.throws(() => readAll([Buffer.concat([header(), TRAILER, Buffer.from([0])])]), /data after the trailer/);
  assert.throws(() => readAll([Buffer.concat([header(), TRAILER]), Buffer.from([0])]), /data after the trailer/);
});

test('a tuple far larger than a chunk, cut anywhere, is put together whole', () => {
  const big = Buffer.alloc(20_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  const s = Buffer.concat([header(), tuple([int8(5n), big]), tuple([int8(6n), Buffer.from('ff', 'hex')]), TRAILER]);
  const want = [[int8(5n).toString('hex'), big.toString('hex')], [int8(6n).toString('hex'), 'ff']];
  for (const cut of [1, 19, 25, 4000, 9000, 15_000, 19_990, s.length - 3]) {
    assert.deepEqual(readAll([s.subarray(0, cut), s.subarray(cut)]), want, `cut at ${cut}`);
  }
  // Many small chunks: the carried-over part grows across several feeds.
  const pieces: Buffer[] = [];
  for (let i = 0; i < s.length; i += 1000) pieces.push(s.subarray(i, i + 1000));
  assert.deepEqual(readAll(pieces), want);
});
