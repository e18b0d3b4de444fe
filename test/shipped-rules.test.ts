import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { actions } from '../src/actions/index.ts';
import { loadRules } from '../src/remediation/rules.ts';
import { renderParams, paramsFor } from '../src/remediation/rules.ts';
import { matches } from '../src/remediation/matchers.ts';

// The rules and schedules shipped in rules/ load with the real actions, and the schedules
// fall on the runbook's days and hours in its timezone.

const rules = loadRules(resolve(import.meta.dirname, '..', 'rules'), actions);

test('every shipped rule and schedule loads against the real actions', () => {
  assert.ok(rules.filter((r) => r.kind === 'alert').length >= 6);
  assert.ok(rules.filter((r) => r.kind === 'schedule').length >= 8);
});

test('a rule renders its params from an alert\'s labels', () => {
  const flush = rules.find((r) => r.name === 'flush-cache-when-full');
  assert.ok(flush);
  assert.deepEqual(paramsFor(flush, { alertname: 'RedisMemoryHigh', remediation: 'redis-flush', target: 'cache' }), {
    target: 'cache',
    db: 0,
    batch_size: 500,
    scan_count: 1000,
    max_keys: 1_000_000,
    memory_fraction: 0.75,
  });
  assert.throws(() => renderParams(flush.params, { alertname: 'RedisMemoryHigh' }), /no label "target"/);
});

test('PostgresRetentionNotKept runs the action of its kind, on the entry the alert names', () => {
  const alert = (kind: 'cleanup' | 'archive', entry: string): Record<string, string> => ({
    alertname: 'PostgresRetentionNotKept',
    severity: 'warning',
    remediation: `${kind}-old-rows`,
    target: 'primary',
    entry,
    kind,
    table: entry,
  });
  const matching = (labels: Record<string, string>) => rules.filter((r) => r.kind === 'alert' && r.matchers.every((m) => matches(m, labels)));
  for (const [kind, entry, action] of [['cleanup', 'chat_logs', 'cleanup-old-rows'], ['archive', 'conversations', 'archive-old-rows']] as const) {
    const labels = alert(kind, entry);
    const found = matching(labels);
    assert.deepEqual(found.map((r) => r.action.name), [action], `${kind}: exactly one rule, running ${action}`);
    const rule = found[0];
    assert.ok(rule);
    assert.equal(paramsFor(rule, labels)['entry'], entry);
    assert.equal(rule.windows.length, 0, 'not disruptive: no window');
  }
});

test('the calendar runs at the runbook\'s local times across daylight saving', () => {
  const at = (name: string, after: string): string => {
    const r = rules.find((x) => x.name === name);
    assert.ok(r?.cron, name);
    return r.cron.next(new Date(after))?.toISOString() ?? 'none';
  };
  // Monday 2 AM Pacific: PST (UTC-8) in winter, PDT (UTC-7) in summer.
  assert.equal(at('monday-chat-log-cleanup', '2026-11-28T00:00:00Z'), '2026-11-30T10:00:00.000Z');
  assert.equal(at('monday-chat-log-cleanup', '2026-07-01T00:00:00Z'), '2026-07-06T09:00:00.000Z');
  // Friday: full backup at 1 AM, restore test at 3 AM.
  assert.equal(at('friday-full-backup', '2026-11-28T00:00:00Z'), '2026-12-04T09:00:00.000Z');
  assert.equal(at('friday-restore-test', '2026-11-28T00:00:00Z'), '2026-12-04T11:00:00.000Z');
  // Wednesday retrain at 2:05 AM; the quarterly rebuild on the first Sunday of January.
  assert.equal(at('wednesday-index-retrain', '2026-11-28T00:00:00Z'), '2026-12-02T10:05:00.000Z');
  assert.equal(at('quarterly-index-rebuild', '2026-11-28T00:00:00Z'), '2027-01-03T09:00:00.000Z');
  // The monthly optimize: 4 AM on the first Sunday of every month, in PDT and in PST, and on
  // 2026-11-01, the first Sunday that PDT ends (4 AM is PST by then).
  assert.equal(at('monthly-index-optimize', '2026-11-28T00:00:00Z'), '2026-12-06T12:00:00.000Z');
  assert.equal(at('monthly-index-optimize', '2026-06-08T00:00:00Z'), '2026-07-05T11:00:00.000Z');
  assert.equal(at('monthly-index-optimize', '2026-10-05T00:00:00Z'), '2026-11-01T12:00:00.000Z');
  assert.equal(at('monthly-index-optimize', '2027-01-02T00:00:00Z'), at('quarterly-index-rebuild', '2027-01-02T00:00:00Z').replace('T09:', 'T12:'), 'after the quarterly rebuild, the same morning');
});

test('the monthly index optimize is switched off like any schedule, with enabled: false', () => {
  const calendar = readFileSync(resolve(import.meta.dirname, '..', 'rules', 'calendar.yml'), 'utf8');
  assert.ok(rules.some((r) => r.name === 'monthly-index-optimize' && r.action.name === 'faiss-optimize'));
  const dir = mkdtempSync(join(tmpdir(), 'hk-calendar-'));
  try {
    writeFileSync(join(dir, 'calendar.yml'), calendar.replace('action: faiss-optimize\n', 'action: faiss-optimize\n    enabled: false\n'));
    const off = loadRules(dir, actions);
    assert.equal(off.some((r) => r.name === 'monthly-index-optimize'), false);
    assert.ok(off.some((r) => r.name === 'quarterly-index-rebuild'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
