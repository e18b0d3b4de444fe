import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import exec from '../src/actions/exec.ts';
import { createTargets } from '../src/targets/index.ts';
import type { ActionContext } from '../src/actions/action.ts';
import { startPostgres, type PgServer } from './harness/postgres.ts';
import { configFrom, memoryLogger } from './helpers/config.ts';
import { notification, rulesDir, startInstance, TOKEN, until, type Instance } from './helpers/remediation.ts';

// The exec action runs real programs, as argv arrays, with labels only as environment.

const dir = mkdtempSync(join(tmpdir(), 'hk-exec-'));
const canary = join(dir, 'pwned');
const ACTIONS = `
actions:
  exec:
    show-label: { argv: ["/usr/bin/printenv"], env_from_labels: [instance] }
    sleeper: { argv: ["/bin/sleep", "30"], timeout: 1s }
    long-sleeper: { argv: ["/bin/sleep", "60"], timeout: 5m }
    fails: { argv: ["/bin/false"] }
    checked: { argv: ["/bin/true"], verify_argv: ["/bin/false"] }
`;

function ctx(): ActionContext {
  const { log } = memoryLogger();
  const config = configFrom(ACTIONS);
  return { config, log, targets: createTargets(config, log) };
}

test('a label carrying shell text reaches the program as inert data, and only allowed labels reach it', async () => {
  const evil = `$(touch ${canary}); touch ${canary}; \`touch ${canary}\``;
  const c = ctx();
  const r = await exec.run(c, { program: 'show-label', labels: { instance: evil, secret: 'not-allowed' } }, new AbortController().signal);
  const output = String((r.details as { output: string }).output);
  assert.ok(output.includes(`HK_LABEL_INSTANCE=${evil}`), 'the value arrives verbatim');
  assert.ok(!output.includes('not-allowed'), 'a label outside env_from_labels is not passed');
  assert.ok(!output.includes('HOUSEKEEPER') && !output.includes('PGPASSWORD'), 'the service\'s own environment is not passed');
  assert.equal(existsSync(canary), false, 'nothing interpreted the text');
});

test('a program past its timeout is killed; a failing one fails; verify_argv decides fixed', async () => {
  const c = ctx();
  await assert.rejects(exec.run(c, { program: 'sleeper' }, new AbortController().signal), /exited SIGTERM: .*timed out after 1000 ms/s);
  await assert.rejects(exec.run(c, { program: 'fails' }, new AbortController().signal), /exited 1/);
  await exec.run(c, { program: 'checked' }, new AbortController().signal);
  assert.deepEqual(await exec.verify(c, { program: 'checked' }), { fixed: false, detail: '/bin/false exited 1' });
  await assert.rejects(exec.plan(c, { program: 'nope' }), /no program "nope" under actions.exec/);
});

let pgs: PgServer;
let inst: Instance;
before(async () => {
  pgs = await startPostgres();
});
after(async () => {
  await inst?.close();
  await pgs?.destroy();
});

test('through the engine: a resolved alert kills its running program', async () => {
  const rules = `
rules:
  - name: run-long
    matchers: ['alertname="CertExpiring"']
    action: exec
    params: { program: long-sleeper, labels: { instance: "{{ $labels.instance }}" } }
`;
  const { actions } = await import('../src/actions/index.ts');
  inst = await startInstance(
    `
state: { url: "${pgs.url({ db: 'postgres' })}" }
remediation: { rules_dir: ${rulesDir(rules)} }
${ACTIONS}
`,
    actions,
  );
  const alert = { labels: { alertname: 'CertExpiring', instance: 'api:443' }, startsAt: '2026-11-28T12:00:00Z' };
  await inst.post(notification([alert]));
  const get = async (q: string): Promise<Array<Record<string, unknown>>> =>
    ((await (await fetch(`${inst.url}/api/remediations${q}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { items: Array<Record<string, unknown>> }).items;
  await until('the program running', async () => (await get('?outcome=running')).length === 1);
  const r = await inst.post(notification([{ ...alert, status: 'resolved' }], 'resolved'));
  assert.equal(r.status, 202);
  const failed = await until('the run ended', async () => (await get('?outcome=failed'))[0]);
  assert.match(String(failed['error']), /exited SIGTERM: .*alert resolved/s);
});
