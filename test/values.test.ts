import { test } from 'node:test';
import assert from 'node:assert/strict';
import { num, str } from '../src/util/values.ts';

test('num: a finite number, or undefined for what is missing or not a number', () => {
  const rows: [unknown, number | undefined][] = [
    [null, undefined],
    [undefined, undefined],
    ['', undefined],
    ['   ', undefined],
    ['NaN', undefined],
    [Number.NaN, undefined],
    ['abc', undefined],
    ['12abc', undefined],
    ['Infinity', undefined],
    [Number.POSITIVE_INFINITY, undefined],
    [Number.NEGATIVE_INFINITY, undefined],
    [{}, undefined],
    [[], undefined],
    [[5], undefined],
    [0, 0],
    ['0', 0],
    [-3.5, -3.5],
    ['-3.5', -3.5],
    ['1e3', 1000],
    [' 12 ', 12],
    [true, 1],
    [false, 0],
    [42n, 42],
    // int8 as pg gives it (text): exact up to 2^53, then the nearest double
    ['9007199254740991', 9007199254740991],
    ['9223372036854775807', 9223372036854775807],
    [9223372036854775807n, 9223372036854775807],
  ];
  for (const [v, want] of rows) assert.equal(num(v), want, `num(${typeof v === 'bigint' ? `${v}n` : JSON.stringify(v)})`);
});

test("str: text, '' for null and undefined", () => {
  assert.equal(str(null), '');
  assert.equal(str(undefined), '');
  assert.equal(str(''), '');
  assert.equal(str('x'), 'x');
  assert.equal(str(0), '0');
  assert.equal(str(12n), '12');
  assert.equal(str(false), 'false');
});
