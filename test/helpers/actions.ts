// Looking up the real actions in action tests, checking params against their schemas, and the
// context they run in.
import assert from 'node:assert/strict';
import { Value } from '@sinclair/typebox/value';
import type { ActionContext, AnyAction } from '../../src/actions/action.ts';
import { actions } from '../../src/actions/index.ts';
import { createTargets } from '../../src/targets/index.ts';
import { configFrom, memoryLogger } from './config.ts';

/** The registered action of that name (fails the test when there is none). */
export function action(name: string): AnyAction {
  const a = actions.find((x) => x.name === name);
  assert.ok(a, `action ${name} is registered`);
  return a;
}

/**
 * `p` as the engine hands it to the action: defaults from the schema filled in, after
 * asserting it is valid (the failure names each error's path).
 */
export function params(a: AnyAction, p: Record<string, unknown>): Record<string, unknown> {
  const resolved = Value.Default(a.params, structuredClone(p));
  assert.ok(Value.Check(a.params, resolved), `params valid for ${a.name}: ${JSON.stringify([...Value.Errors(a.params, resolved)].map((e) => `${e.path} ${e.message}`))}`);
  return resolved as Record<string, unknown>;
}

/**
 * What an action runs with, from config YAML: the targets it names (the caller closes them
 * with closeTargets) and a logger that keeps its lines in memory.
 */
export function actionContext(yaml: string): ActionContext {
  const config = configFrom(yaml);
  const { log } = memoryLogger();
  return { targets: createTargets(config, log), config, log };
}
