import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { parseDuration } from '../src/util/duration.ts';
import { makeTempDir, runTool } from './harness/proc.ts';

// Each row is checked against housekeeper's parser and against Prometheus itself (Debian's
// promtool 2.42, `check rules` on an alert whose `for:` is the text), so which texts are
// durations is Prometheus's answer, not a reading of its source.

const H = 3_600_000;
const D = 24 * H;
/** The text, and its value in milliseconds, or undefined when Prometheus refuses it. */
const ROWS: [string, number | undefined][] = [
  ['0', 0],
  ['0s', 0],
  ['0ms', 0],
  ['500ms', 500],
  ['5s', 5_000],
  ['2m', 120_000],
  ['1h30m', 1.5 * H],
  ['90d', 90 * D],
  ['1w2d', 9 * D],
  ['1y', 365 * D],
  ['1y1w1d1h1m1s1ms', 365 * D + 7 * D + D + H + 60_000 + 1_000 + 1],
  ['1m5ms', 60_005],
  ['01h', H],
  ['1h0m', H],
  ['292y', 292 * 365 * D],
  ['106751d', 106_751 * D],
  ['1.5h', undefined],
  ['5s1h', undefined],
  ['1ms1s', undefined],
  ['1h1h', undefined],
  ['5sms', undefined],
  ['5', undefined],
  ['00', undefined],
  ['', undefined],
  [' 5s', undefined],
  ['5s ', undefined],
  ['1 h', undefined],
  ['+1h', undefined],
  ['-1h', undefined],
  ['1M', undefined],
  ['1S', undefined],
  ['1Y', undefined],
  ['1mo', undefined],
  // Past Go's time.Duration (int64 nanoseconds): one unit too big, or the sum.
  ['300y', undefined],
  ['106752d', undefined],
  ['292y52w', undefined],
  ['9999999999999999999s', undefined],
];

let dir: string | undefined;
async function prometheusAccepts(text: string): Promise<boolean> {
  dir ??= makeTempDir('promtool-durations-', undefined);
  const file = path.join(dir, `rules-${Math.random().toString(36).slice(2)}.yml`);
  await writeFile(file, stringify({ groups: [{ name: 'g', rules: [{ alert: 'A', expr: 'vector(1)', for: text }] }] }));
  try {
    await runTool('/usr/bin/promtool', ['check', 'rules', file], { asOwner: undefined, timeoutMs: 20_000 });
    return true;
  } catch (err) {
    // Refused for the duration, not for something else in the file.
    assert.match((err as Error).message, /duration/, `promtool on ${JSON.stringify(text)}`);
    return false;
  }
}

describe('durations as Prometheus 2.42 reads them', { concurrency: 4 }, () => {
  for (const [text, ms] of ROWS) {
    test(`${JSON.stringify(text)} ${ms === undefined ? 'is refused' : `is ${ms} ms`}`, async () => {
      assert.equal(await prometheusAccepts(text), ms !== undefined, 'Prometheus accepts it');
      if (ms === undefined) assert.throws(() => parseDuration(text), Error, 'housekeeper refuses it');
      else assert.equal(parseDuration(text), ms);
    });
  }
});
