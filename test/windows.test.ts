import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inWindow, localTime, nextWindowStart, type Window } from '../src/remediation/windows.ts';

// Maintenance windows in the runbook's timezone, across daylight saving and midnight.

const la = (days: Window['days'], start: number, end: number): Window => ({ days, startMin: start, endMin: end, timezone: 'America/Los_Angeles' });
const sundayOneToFive = la(['sun'], 60, 300);

test('Sunday 1-5 AM Pacific, in winter (PST) and summer (PDT)', () => {
  // 2026-11-29 is a Sunday; 01:30 PST = 09:30 UTC.
  assert.equal(inWindow(sundayOneToFive, new Date('2026-11-29T09:30:00Z')), true);
  assert.equal(inWindow(sundayOneToFive, new Date('2026-11-29T08:59:00Z')), false, '00:59 PST');
  assert.equal(inWindow(sundayOneToFive, new Date('2026-11-29T13:00:00Z')), false, '05:00 PST: the end is exclusive');
  // 2026-07-05 is a Sunday; 01:30 PDT = 08:30 UTC.
  assert.equal(inWindow(sundayOneToFive, new Date('2026-07-05T08:30:00Z')), true);
  assert.equal(inWindow(sundayOneToFive, new Date('2026-07-06T08:30:00Z')), false, 'Monday 01:30 PDT');
  assert.deepEqual(localTime(new Date('2026-07-05T08:30:00Z'), 'America/Los_Angeles'), { day: 'sun', minute: 90 });
});

test('a window past midnight belongs to the day it starts', () => {
  const satNight = la(['sat'], 23 * 60, 2 * 60); // Saturday 23:00 to Sunday 02:00
  assert.equal(inWindow(satNight, new Date('2026-11-29T07:30:00Z')), true, 'Saturday 23:30 PST');
  assert.equal(inWindow(satNight, new Date('2026-11-29T09:30:00Z')), true, 'Sunday 01:30 PST');
  assert.equal(inWindow(satNight, new Date('2026-11-29T10:30:00Z')), false, 'Sunday 02:30 PST');
  assert.equal(inWindow(satNight, new Date('2026-11-30T09:30:00Z')), false, 'Monday 01:30 PST');
});

test('the next window start is found, or none within 8 days', () => {
  // From Saturday noon PST, the next Sunday 1 AM PST.
  assert.equal(nextWindowStart([sundayOneToFive], new Date('2026-11-28T20:00:00Z'))?.toISOString(), '2026-11-29T09:00:00.000Z');
  // Inside a window: now (rounded up to the minute).
  assert.equal(nextWindowStart([sundayOneToFive], new Date('2026-11-29T09:30:00Z'))?.toISOString(), '2026-11-29T09:30:00.000Z');
  assert.equal(nextWindowStart([la([], 0, 60)], new Date('2026-11-28T20:00:00Z')), undefined);
});
