import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Targets } from '../targets/index.ts';

/** What an action sees: the configured clients, the config, a logger. Never alert labels. */
export interface ActionContext {
  readonly targets: Targets;
  readonly config: Config;
  readonly log: Logger;
}

/** What an action would do (dry run) or is about to do; recorded in the remediation log. */
export interface Plan {
  /** One line an operator reads, e.g. "FLUSHDB ASYNC on cache db 0 (1843 keys)". */
  summary: string;
  /** Details for the log (JSON): objects it would touch, values it would set. No secrets. */
  details?: Record<string, unknown>;
  /** When the action can tell there is nothing to do, the engine records "skipped". */
  nothingToDo?: boolean;
}

export interface RunResult {
  summary: string;
  details?: Record<string, unknown>;
}

export interface Verification {
  /** Did the condition that triggered the action clear? */
  fixed: boolean;
  detail: string;
}

/**
 * One remediation (one file each under src/actions/). Params are validated against the
 * TypeBox schema before plan or run ever see them; identifiers in params are checked
 * against the catalog and quoted, values bound, commands argv arrays — never SQL or shell
 * text built from alert labels.
 */
export interface Action<S extends TSchema = TSchema> {
  readonly name: string;
  readonly description: string;
  readonly params: S;
  /** Idempotent actions may be re-run after a crash; the others say why not in `description`. */
  readonly idempotent: boolean;
  /** Disruptive actions run only inside a maintenance window unless the rule says otherwise. */
  readonly disruptive: boolean;
  /**
   * The system this run touches, e.g. "redis:cache" or "postgres:primary": the engine runs one
   * action at a time per target key, and cooldowns are per (rule, target key). Given the
   * config, so an action that names a config entry can key on the server behind it.
   */
  targetKey(p: Static<S>, config?: Config): string;
  plan(ctx: ActionContext, p: Static<S>): Promise<Plan>;
  run(ctx: ActionContext, p: Static<S>, signal: AbortSignal): Promise<RunResult>;
  /**
   * Whether the run fixed it. `signal` is the run's deadline (remediation.action_timeout): the
   * engine stops waiting when it fires, so a verify that hangs on a dead server fails the job
   * instead of holding it; a verify that can cancel its own work should.
   */
  verify(ctx: ActionContext, p: Static<S>, signal?: AbortSignal): Promise<Verification>;
}

/** Any action with its param type forgotten; the engine validates params with the schema. */
export type AnyAction = Action<TSchema>;

/**
 * Registers an action. Its plan, run and verify always see the schema's defaults filled in,
 * whoever calls them (the engine, `housekeeper check`, tests), so no action repeats a default.
 */
export function defineAction<S extends TSchema>(a: Action<S>): AnyAction {
  const withDefaults = (p: Static<S>): Static<S> => Value.Default(a.params, structuredClone(p)) as Static<S>;
  const wrapped: Action<S> = {
    ...a,
    plan: (ctx, p) => a.plan(ctx, withDefaults(p)),
    run: (ctx, p, signal) => a.run(ctx, withDefaults(p), signal),
    verify: (ctx, p, signal) => a.verify(ctx, withDefaults(p), signal),
  };
  return wrapped as unknown as AnyAction;
}

/**
 * Params as plan, run and verify receive them: the schema's defaults filled in (they are
 * written once, in the schema, so params with a default are not optional in `Static<S>`) and
 * strings converted where the schema wants numbers or booleans (alert labels are strings).
 * Throws naming the first invalid field.
 */
export function resolveParams(a: AnyAction, raw: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const resolved = Value.Convert(a.params, Value.Default(a.params, structuredClone(raw))) as Record<string, unknown>;
  const err = Value.Errors(a.params, resolved).First();
  if (err) throw new Error(`params${err.path.replace(/\//g, '.')}: ${err.message}`);
  return resolved;
}

