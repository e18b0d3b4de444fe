// Alertmanager's matcher syntax, read the way Alertmanager 0.25 reads it (pkg/labels/parse.go),
// so a rule's `matchers` select exactly the alerts an Alertmanager route with the same lines
// would: `name="value"`, `name!="value"`, `name=~"regex"`, `name!~"regex"`; quotes optional;
// each `matchers` entry may hold a comma-separated list, optionally wrapped in `{...}`.
// Regexes are RE2 (Go's syntax: `(?i)`, `\pL`, `[[:digit:]]`, no backreferences or lookaround),
// anchored `^(?:...)$` as Alertmanager anchors them, and run in linear time, so a hostile label
// value cannot stall the webhook. A missing label matches as the empty string.
import { RE2JS } from 're2js';

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface Pattern {
  /** Whether the whole value matches (the pattern is anchored). */
  test(value: string): boolean;
}

export interface Matcher {
  name: string;
  op: MatchOp;
  value: string;
  /** Compiled, anchored, for =~ and !~. */
  regex?: Pattern;
  /** The matcher as written, for messages and logs. */
  text: string;
}

// Go's \s is ASCII whitespace only; JS's \s is wider, so the class is spelled out.
const WS = '[\\t\\n\\f\\r ]';
// Label name (colons allowed, as Alertmanager allows them), operator (=~ before =), then the
// raw value: everything up to trailing whitespace.
const MATCHER = new RegExp(`^${WS}*([a-zA-Z_:][a-zA-Z0-9_:]*)${WS}*(=~|=|!=|!~)${WS}*([\\s\\S]*?)${WS}*$`);

/**
 * Parses one matcher; throws with a message saying what is wrong. As in Alertmanager the value
 * may be double-quoted; inside it `\"`, `\\` and `\n` are escapes and any other backslash is
 * literal; an unescaped `"` anywhere but the ends is an error.
 */
export function parseMatcher(text: string): Matcher {
  const m = MATCHER.exec(text);
  if (!m) throw new Error(`not a matcher: ${JSON.stringify(text)} (expected e.g. alertname="RedisMemoryHigh" or severity=~"warning|critical")`);
  const name = m[1] as string;
  const op = m[2] as MatchOp;
  const value = unquote(m[3] as string, text);
  const matcher: Matcher = { name, op, value, text: text.trim() };
  if (op === '=~' || op === '!~') matcher.regex = compileAnchored(value, text);
  return matcher;
}

/**
 * Parses one `matchers` entry as Alertmanager's config reads each line: a comma-separated list
 * (commas inside quotes do not split), an optional leading `{` and trailing `}`, a trailing
 * comma tolerated, an empty entry giving no matchers.
 */
export function parseMatchers(text: string): Matcher[] {
  let s = text.startsWith('{') ? text.slice(1) : text;
  if (s.endsWith('}')) s = s.slice(0, -1);
  const tokens: string[] = [];
  let token = '';
  let quoted = false;
  let escaped = false;
  for (const c of s) {
    if (c === ',' && !quoted) {
      tokens.push(token);
      token = '';
      continue;
    }
    if (c === '"') {
      if (escaped) escaped = false;
      else quoted = !quoted;
    } else if (c === '\\') {
      escaped = !escaped;
    } else {
      escaped = false;
    }
    token += c;
  }
  // Only the last piece may be blank (a trailing comma); an empty piece elsewhere is an error,
  // which parseMatcher reports.
  if (token.trim() !== '') tokens.push(token.trim());
  return tokens.map(parseMatcher);
}

function unquote(raw: string, text: string): string {
  if (!raw.isWellFormed()) throw new Error(`matcher value is not valid UTF-8: ${JSON.stringify(text)}`);
  const quoted = raw.startsWith('"');
  const body = quoted ? raw.slice(1) : raw;
  const chars = [...body];
  let out = '';
  let closed = !quoted;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] as string;
    if (c === '\\' && i < chars.length - 1) {
      const next = chars[++i] as string;
      out += next === 'n' ? '\n' : next === '"' || next === '\\' ? next : `\\${next}`;
    } else if (c === '"') {
      if (closed || i < chars.length - 1) throw new Error(`unescaped double quote in the value of ${JSON.stringify(text)}`);
      closed = true;
    } else {
      out += c;
    }
  }
  if (!closed) throw new Error(`missing closing double quote in ${JSON.stringify(text)}`);
  return out;
}

function compileAnchored(value: string, text: string): Pattern {
  let re: RE2JS;
  try {
    // The same string concatenation Alertmanager does, so its quirks (e.g. `a)|(b`) carry over.
    re = RE2JS.compile(`^(?:${value})$`);
  } catch (err) {
    throw new Error(`bad regular expression in ${JSON.stringify(text)}: ${(err as Error).message}`);
  }
  // Go before 1.22 (which Alertmanager 0.25 is built with) knows only (?P<name>...); re2js
  // also takes (?<name>...). Refused here too, so a rule never accepts what Alertmanager refuses.
  for (const group of Object.keys(re.namedGroups())) {
    if (!value.includes(`(?P<${group}>`)) {
      throw new Error(`bad regular expression in ${JSON.stringify(text)}: named group (?<${group}>...) needs Go's spelling (?P<${group}>...)`);
    }
  }
  return { test: (v) => re.test(v) };
}

export function matches(m: Matcher, labels: Readonly<Record<string, string>>): boolean {
  const v = labels[m.name] ?? '';
  switch (m.op) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return m.regex?.test(v) ?? false;
    case '!~':
      return !(m.regex?.test(v) ?? false);
  }
}

export function matchesAll(ms: readonly Matcher[], labels: Readonly<Record<string, string>>): boolean {
  return ms.every((m) => matches(m, labels));
}
