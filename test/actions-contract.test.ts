import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kind } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { actions } from '../src/actions/index.ts';

// The registry and the params contract of every action. Each action's real work is tested
// against real servers in test/actions-{redis,postgres,pgbouncer}.test.ts.

const minimal: Record<string, Record<string, unknown>> = {
  'redis-flush': { target: 'cache', db: 1 },
  'redis-warm': { query: 'top' },
  'pgbouncer-pool-resize': { target: 'bouncer', postgres: 'primary', database: 'app' },
  'pg-cancel-long-queries': { target: 'primary', threshold_seconds: 5 },
  'pg-terminate-idle-in-transaction': { target: 'primary', threshold_seconds: 60 },
  'pg-vacuum': { target: 'primary' },
  'pg-reindex': { target: 'primary', indexes: ['docs_pkey'] },
};

// Actions of this group; others (e.g. exec) are tested in their own files.
const ours = actions.filter((a) => a.name in minimal);

test('the registry lists every action once, by the names rules use', () => {
  const names = actions.map((a) => a.name);
  assert.equal(new Set(names).size, names.length, 'names are unique');
  assert.deepEqual(ours.map((a) => a.name).sort(), Object.keys(minimal).sort());
  for (const a of ours) {
    assert.match(a.name, /^[a-z][a-z0-9-]+$/);
    assert.ok(a.description.length > 100, `${a.name} describes what it does and guarantees`);
    assert.match(a.description, /[Ii]dempotent/, `${a.name} says whether it is idempotent`);
    assert.equal(a.params[Kind], 'Object');
    assert.equal(a.params['additionalProperties'], false, `${a.name} refuses unknown params`);
  }
  assert.deepEqual(
    ours.filter((a) => a.disruptive).map((a) => a.name),
    ['pg-reindex'],
  );
  assert.deepEqual(
    ours.filter((a) => !a.idempotent).map((a) => a.name),
    ['pgbouncer-pool-resize'],
  );
});

test('minimal params validate (with the schema\'s defaults) and give a target key; target names carrying text do not', () => {
  for (const a of ours) {
    // What the engine hands an action: the rule's params with the schema's defaults filled in.
    const p = Value.Default(a.params, structuredClone(minimal[a.name])) as Record<string, unknown>;
    assert.ok(Value.Check(a.params, p), `${a.name}: ${JSON.stringify([...Value.Errors(a.params, p)].map((e) => `${e.path} ${e.message}`))}`);
    assert.match(a.targetKey(p), /^[a-z-]+:[A-Za-z0-9_.-]+$/);
    for (const key of ['target', 'postgres', 'query']) {
      if (!(key in p)) continue;
      const names = key === 'query' ? [] : ['a'.repeat(64), '-rf']; // target names as config allows them
      for (const bad of ['primary; DROP TABLE docs', '{{ $labels.target }}', '$(reboot)', '', 'a b', ...names]) {
        assert.equal(Value.Check(a.params, { ...p, [key]: bad }), false, `${a.name} ${key}=${JSON.stringify(bad)}`);
      }
    }
    assert.equal(Value.Check(a.params, { ...p, unexpected: 1 }), false);
  }
});

test('numbers are bounded', () => {
  const byName = new Map(actions.map((a) => [a.name, a]));
  const cases: [string, Record<string, unknown>][] = [
    ['redis-flush', { target: 'c', db: 1, max_keys: 0 }],
    ['redis-flush', { target: 'c', db: 1, memory_fraction: 0 }],
    ['redis-flush', { target: 'c', db: 1, memory_fraction: 1.5 }],
    ['redis-warm', { query: 'q', max_rows: 10_000_000 }],
    ['pgbouncer-pool-resize', { target: 'b', postgres: 'p', database: 'app', step: 0 }],
    ['pgbouncer-pool-resize', { target: 'b', postgres: 'p', database: 'app', max_pool_size: 10_001 }],
    ['pg-cancel-long-queries', { target: 'p', threshold_seconds: 0 }],
    ['pg-cancel-long-queries', { target: 'p', threshold_seconds: 1.5 }],
    ['pg-terminate-idle-in-transaction', { target: 'p', threshold_seconds: 5, limit: 100_000 }],
    ['pg-vacuum', { target: 'p', dead_ratio: 2 }],
    ['pg-vacuum', { target: 'p', max_tables: 1000 }],
    ['pg-reindex', { target: 'p', indexes: [] }],
    ['pg-reindex', { target: 'p', max_indexes: 0 }],
    ['pg-reindex', { target: 'p', timeout_seconds: 100_000 }],
  ];
  for (const [name, p] of cases) assert.equal(Value.Check(byName.get(name)!.params, p), false, `${name} ${JSON.stringify(p)}`);
});
