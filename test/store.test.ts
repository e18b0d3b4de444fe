import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gauge, Registry } from 'prom-client';
import { setGauge } from '../src/metrics/store.ts';

// setGauge must leave a gauge exactly as prom-client's own set() would: same keys, same
// entries (the labels object as given), last value wins, same errors.

type Labels = Partial<Record<string, string | number>>;

const samples: Array<[Labels, number]> = [
  [{ target: 'a', table: 't1', schema: 'public' }, 1],
  // Same series with its labels in another order: one series, the last value and labels win.
  [{ schema: 'public', table: 't1', target: 'a' }, 2],
  [{ target: 'a', table: 't2', schema: 'public' }, Number.NaN],
  [{ target: 'b', table: 't1', schema: 'public' }, Number.POSITIVE_INFINITY],
  [{ target: 'b', table: 'weird "x" \\ y:z,', schema: 'public' }, -0],
  [{ target: 'b', table: 'x', schema: 7 }, 0.5],
  [{ target: 'b', table: 'x', schema: '7' }, 0.25],
  // An undefined value is left out of the key, as prom-client does.
  [{ target: 'c', table: undefined, schema: 'public' }, 3],
  [{ target: 'c', schema: 'public' }, 4],
  [{ target: 'd' }, 5],
];

function pair(): [Gauge<string>, Gauge<string>] {
  const r = new Registry();
  const opts = { help: 'h', labelNames: ['target', 'table', 'schema'], registers: [r] };
  return [new Gauge({ name: 'by_set', ...opts }), new Gauge({ name: 'by_store', ...opts })];
}

const internals = (g: Gauge<string>): Record<string, { value: number; labels: Labels }> => (g as unknown as { hashMap: Record<string, { value: number; labels: Labels }> }).hashMap;

test('setGauge leaves the same store as Gauge.set, duplicates and odd values included', async () => {
  const [bySet, byStore] = pair();
  for (const [labels, v] of samples) {
    bySet.set(labels, v);
    setGauge(byStore, labels, v);
  }
  const a = internals(bySet);
  const b = internals(byStore);
  assert.deepEqual(Object.keys(b), Object.keys(a));
  for (const key of Object.keys(a)) {
    assert.ok(Object.is(b[key]?.value, a[key]?.value), `value of ${key}`);
    // The very labels object given last, as set() keeps it (its order is the output's order).
    assert.equal(b[key]?.labels, a[key]?.labels, `labels of ${key}`);
  }
  assert.deepEqual((await byStore.get()).values, (await bySet.get()).values);
  // 10 samples, 7 series: reordered labels, 7 vs '7' and undefined vs absent are one each.
  assert.equal(Object.keys(a).length, 7);
});

test('setGauge throws what Gauge.set throws', () => {
  const [bySet, byStore] = pair();
  const cases: Array<[Labels, unknown]> = [
    [{ target: 'a', nope: 'x' }, 1],
    [{ target: 'a' }, '1'],
    [{ target: 'a' }, undefined],
  ];
  for (const [labels, v] of cases) {
    let expected: unknown;
    try {
      bySet.set(labels, v as number);
    } catch (err) {
      expected = err;
    }
    assert.ok(expected instanceof Error, `Gauge.set throws for ${JSON.stringify(labels)} ${String(v)}`);
    assert.throws(
      () => setGauge(byStore, labels, v as number),
      (err: unknown) => err instanceof Error && err.constructor === expected.constructor && err.message === expected.message,
    );
  }
  assert.deepEqual(internals(byStore), internals(bySet));
});

test('a gauge without the known store shape is set through its own set()', () => {
  const [, g] = pair();
  const calls: Array<[Labels, number]> = [];
  const stranger = { set: (labels: Labels, v: number) => calls.push([labels, v]) } as unknown as Gauge<string>;
  setGauge(stranger, { target: 'a' }, 1);
  assert.deepEqual(calls, [[{ target: 'a' }, 1]]);
  setGauge(g, { target: 'a' }, 1);
  assert.equal(Object.keys(internals(g)).length, 1);
});
