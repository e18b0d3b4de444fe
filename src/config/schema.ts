import { KindGuard, Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { registerSecret } from '../log.ts';
import { parseDuration } from '../util/duration.ts';
import { fail, type Path, type Src } from './source.ts';

// The building blocks of the config sections. Each option is written once: in its section's
// TypeBox schema, with its default and description. TypeBox fills the defaults before
// validation (Value.Default in load.ts), so an option with a default is required in the schema
// (it is always there afterwards) and Static<> of a section is the file's shape with defaults.
// `normaliseFields` then turns that shape into the one the code reads (camelCase keys,
// durations in milliseconds), and `Normalised<>` says that shape as a type, so neither the
// names nor the defaults are written again. Sections normalise by hand only what really changes
// shape: URLs and secrets read from files, paths resolved, references between sections checked.

/** What a section's normaliser needs: the file (for errors and relative paths) and the env. */
export interface Ctx {
  file: string;
  src: Src;
  /** The config file's directory: relative paths in the file are resolved against it. */
  base: string;
  env: NodeJS.ProcessEnv;
  /** Top-level sections written in the file (before defaults filled the others in). */
  given: ReadonlySet<string>;
}

export function failAt(ctx: Ctx, path: Path, problem: string): never {
  return fail(ctx.file, ctx.src, path, problem);
}

const NAME = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$';
export const Name = Type.String({ pattern: NAME, description: 'target name' });
/** A reference to a target of another section, by its name (checked by the normaliser). */
export const Ref = (kind: string) => Type.String({ pattern: NAME, description: `name of a ${kind} target` });

declare const durationBrand: unique symbol;
/** Duration text as written in the file ("5s"); branded so `Normalised` knows it becomes `…Ms: number`. */
export type DurationText = string & { readonly [durationBrand]: true };
const DURATION = 'x-duration';

/** A duration option (Prometheus notation); normalised to milliseconds under the key `<name>Ms`. */
export function Duration(description: string, dflt?: string): TUnsafe<DurationText> {
  const hint = 'duration such as 5s, 2m, 1h';
  return Type.Unsafe<DurationText>(Type.String({ description, 'x-hint': hint, [DURATION]: true, ...(dflt === undefined ? {} : { default: dflt }) }));
}

export function isDuration(schema: TSchema): boolean {
  return (schema as Record<string, unknown>)[DURATION] === true;
}

/** The runbook's numbers are seconds; the config speaks durations ("30d", "5s"). */
export function durationText(seconds: number): string {
  for (const [unit, s] of [['d', 86_400], ['h', 3_600], ['m', 60]] as const) {
    if (seconds % s === 0) return `${seconds / s}${unit}`;
  }
  return `${seconds}s`;
}

/** Marks a value as secret-capable in the docs and in error hints. */
export const Secret = { description: 'a value, ${ENV} reference, or use the *_file form' };

/** Entries of a name → entry map (actions.exec etc.). TypeBox fills an entry's defaults only
 *  when the entry schema itself has a `default`; `{}` is never used as a value (entries exist). */
export const entryOptions = { additionalProperties: false, default: {} } as const;

type Camel<S extends string> = S extends `${infer H}_${infer R}` ? `${H}${Capitalize<Camel<R>>}` : S;
type NormalisedKey<K, V> = K extends string ? (NonNullable<V> extends DurationText ? `${Camel<K>}Ms` : Camel<K>) : K;

/** The shape `normaliseFields` returns: snake_case keys in camelCase, durations as `…Ms` numbers,
 *  every key present (an absent optional one as undefined). Record keys (names chosen by the
 *  user) stay as written. */
export type Normalised<T> = T extends DurationText
  ? number
  : T extends readonly (infer E)[]
    ? Normalised<E>[]
    : T extends object
      ? { [K in keyof T as NormalisedKey<K, T[K]>]-?: Normalised<T[K]> }
      : T;

const camel = (key: string): string => key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/** Renames and converts a validated, defaulted value by its schema (see `Normalised`). */
export function normaliseFields<S extends TSchema>(schema: S, value: Static<S>, path: Path, ctx: Ctx): Normalised<Static<S>> {
  return walk(schema, value, path, ctx) as Normalised<Static<S>>;
}

function walk(schema: TSchema, value: unknown, path: Path, ctx: Ctx): unknown {
  if (value === undefined) return undefined;
  if (isDuration(schema)) {
    try {
      return parseDuration(value as string);
    } catch (err) {
      failAt(ctx, path, (err as Error).message);
    }
  }
  if (KindGuard.IsObject(schema)) {
    const out: Record<string, unknown> = {};
    // Every known key, absent optional ones as undefined: the shape `Normalised` states.
    for (const [k, p] of Object.entries(schema.properties)) {
      out[isDuration(p) ? `${camel(k)}Ms` : camel(k)] = walk(p, (value as Record<string, unknown>)[k], [...path, k], ctx);
    }
    return out;
  }
  if (KindGuard.IsRecord(schema)) {
    const [item] = Object.values(schema.patternProperties);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as object)) out[k] = item ? walk(item, v, [...path, k], ctx) : v;
    return out;
  }
  if (KindGuard.IsArray(schema)) return (value as unknown[]).map((v, i) => walk(schema.items, v, [...path, i], ctx));
  return value;
}

/** A path from the file, resolved against the file's directory. */
export function resolvePath(ctx: Ctx, p: string): string {
  return resolve(ctx.base, p);
}

/** Reads a secret (a token, a password) from a file next to the config and registers it for scrubbing. */
export function readSecretFile(ctx: Ctx, path: Path, f: string): string {
  try {
    const v = readFileSync(resolvePath(ctx, f), 'utf8').trim();
    registerSecret(v);
    return v;
  } catch (err) {
    failAt(ctx, path, `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The URL of a target from exactly one of `url` and `url_file`; its password registered as a secret. */
export function resolveUrl(ctx: Ctx, t: { url?: string | undefined; url_file?: string | undefined }, path: Path, protocols: string[]): string {
  if ((t.url === undefined) === (t.url_file === undefined)) {
    failAt(ctx, path, 'give exactly one of url and url_file');
  }
  let url = t.url;
  const fieldPath = [...path, t.url !== undefined ? 'url' : 'url_file'];
  if (url === undefined && t.url_file !== undefined) {
    try {
      url = readFileSync(resolvePath(ctx, t.url_file), 'utf8').trim();
    } catch (err) {
      failAt(ctx, fieldPath, `cannot read ${t.url_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  let parsed: URL;
  try {
    parsed = new URL(url ?? '');
  } catch {
    // Never echo the URL itself: it may hold a password.
    failAt(ctx, fieldPath, `not a valid URL (expected ${protocols.map((p) => `${p}//…`).join(' or ')})`);
  }
  if (!protocols.includes(parsed.protocol)) {
    failAt(ctx, fieldPath, `URL scheme must be ${protocols.join(' or ')}, got ${parsed.protocol}`);
  }
  if (parsed.password) registerSecret(decodeURIComponent(parsed.password));
  return url as string;
}

export function uniqueNames(ctx: Ctx, list: readonly { name: string }[], section: string): void {
  const seen = new Set<string>();
  list.forEach((t, i) => {
    if (seen.has(t.name)) failAt(ctx, [section, i, 'name'], `duplicate target name "${t.name}"`);
    seen.add(t.name);
  });
}

/** A reference to another section's target by name, checked. */
export function mustExist(ctx: Ctx, names: readonly { name: string }[], name: string, kind: string, path: Path): void {
  if (!names.some((t) => t.name === name)) failAt(ctx, path, `no ${kind} target named "${name}"`);
}
