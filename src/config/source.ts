import { type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import { isMap, isScalar, isSeq, type Document, type LineCounter } from 'yaml';

// Where a config value came from, so that every problem names the file, the field and its
// line. Shared by the config sections and by the rules files (src/remediation/rules.ts).

export type Path = readonly (string | number)[];

export class ConfigError extends Error {
  constructor(file: string, field: string, problem: string, line?: number) {
    const where = field === '' ? '' : ` ${field}${line !== undefined ? ` (line ${line})` : ''}:`;
    super(`invalid config ${file}:${where} ${problem}`);
    this.name = 'ConfigError';
  }
}

/** The parsed YAML and its line index, so errors can name the line of a field. */
export interface Src {
  doc: Document;
  lines: LineCounter;
}

function fieldName(path: Path): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc === '' ? p : `${acc}.${p}`), '');
}

function lineOf(src: Src, path: Path): number | undefined {
  // Walk down to the deepest node that exists and report its line.
  let node: unknown = src.doc.contents;
  let offset: number | undefined;
  const mark = (n: unknown): void => {
    const range = (n as { range?: [number, number, number] } | null)?.range;
    if (range) offset = range[0];
  };
  mark(node);
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
      if (!pair) break;
      mark(pair.key);
      node = pair.value;
      mark(node);
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key];
      mark(node);
    } else break;
  }
  return offset === undefined ? undefined : src.lines.linePos(offset).line;
}

export function fail(file: string, doc: Src, path: Path, problem: string): never {
  throw new ConfigError(file, fieldName(path), problem, lineOf(doc, path));
}

/** Replaces ${NAME} in every string with the environment's value; an unset one is an error. */
export function expandEnv(value: unknown, path: (string | number)[], file: string, doc: Src, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) fail(file, doc, path, `environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, [...path, i], file, doc, env));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, [...path, k], file, doc, env);
    return out;
  }
  return value;
}

/** Throws a ConfigError for the first place `value` breaks `schema`, naming field and line. */
export function checkSchema(schema: TSchema, value: unknown, file: string, doc: Src, base: (string | number)[] = []): void {
  const err = Value.Errors(schema, value).First();
  if (!err) return;
  const path = [
    ...base,
    ...err.path
      .split('/')
      .filter((p) => p !== '')
      .map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~'))),
  ];
  let problem = err.message;
  if (err.type === ValueErrorType.ObjectAdditionalProperties) {
    // The path ends at the unknown key; the schema is the object that refused it.
    const allowed = Object.keys((err.schema as { properties?: object }).properties ?? {});
    problem = `unknown key "${String(path[path.length - 1])}" (allowed: ${allowed.join(', ')})`;
  } else if (err.schema['x-hint'] ?? err.schema.description) {
    // A duration's hint is its notation; any other field's is its description.
    problem = `${err.message} (${String(err.schema['x-hint'] ?? err.schema.description)})`;
  }
  fail(file, doc, path, problem);
}
