// Prints docs/configuration.md's option table from the config schemas (src/config/), so
// the reference cannot drift from the code (test/docs.test.ts compares the two).
import { KindGuard, OptionalKind, type TSchema } from '@sinclair/typebox';
import { ConfigSchema } from '../src/config.ts';
import { isDuration } from '../src/config/schema.ts';
import { generatorMain } from './doc-block.ts';

const cell = (text: string): string => text.replace(/\|/g, '\\|');

function typeOf(s: TSchema): string {
  if (isDuration(s)) return 'duration';
  if (KindGuard.IsArray(s)) return KindGuard.IsObject(s.items) ? 'list of entries' : `list of ${typeOf(s.items)}`;
  if (KindGuard.IsRecord(s)) return 'map of name to entry';
  if (KindGuard.IsObject(s)) return 'section';
  if (KindGuard.IsUnion(s)) return s.anyOf.map((o) => (KindGuard.IsLiteral(o) ? `\`${String(o.const)}\`` : typeOf(o))).join(', ');
  const range = (lo: unknown, hi: unknown): string =>
    lo === undefined && hi === undefined ? '' : ` ${lo === undefined ? '' : String(lo)}..${hi === undefined ? '' : String(hi)}`;
  if (KindGuard.IsInteger(s)) return `integer${range(s.minimum, s.maximum)}`;
  if (KindGuard.IsNumber(s)) return `number${range(s.minimum, s.maximum)}`;
  if (KindGuard.IsString(s)) return 'string';
  if (KindGuard.IsBoolean(s)) return 'boolean';
  return String(s.type ?? 'value');
}

function defaultOf(s: TSchema, required: boolean): string {
  if ('default' in s) {
    const d: unknown = s.default;
    // `{}` on a section or an entry only lets TypeBox reach the fields' own defaults.
    if (typeof d === 'object' && d !== null && !Array.isArray(d) && Object.keys(d).length === 0) return '';
    return `\`${typeof d === 'string' ? d : JSON.stringify(d)}\``;
  }
  return required ? 'required' : '';
}

export function configReference(): string {
  const out = ['| option | type | default | meaning |', '| --- | --- | --- | --- |'];
  const visit = (s: TSchema, path: string): void => {
    if (KindGuard.IsObject(s)) {
      for (const [key, p] of Object.entries(s.properties)) {
        const name = path === '' ? key : `${path}.${key}`;
        out.push(`| \`${name}\` | ${typeOf(p)} | ${defaultOf(p, p[OptionalKind] !== 'Optional')} | ${cell(p.description ?? '')} |`);
        visit(p, name);
      }
    } else if (KindGuard.IsArray(s)) {
      visit(s.items, `${path}[]`);
    } else if (KindGuard.IsRecord(s)) {
      const [item] = Object.values(s.patternProperties);
      if (item) visit(item, `${path}.NAME`);
    }
  };
  visit(ConfigSchema, '');
  return out.join('\n');
}

if (import.meta.main) generatorMain(new URL('../docs/configuration.md', import.meta.url), 'options', configReference);
