// Alertmanager's matcher syntax: `name="value"`, `name!="value"`, `name=~"regex"`,
// `name!~"regex"`. Regexes are anchored at both ends, as Alertmanager anchors them, and a
// missing label matches as the empty string, as in Alertmanager.

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  name: string;
  op: MatchOp;
  value: string;
  /** Compiled, anchored, for =~ and !~. */
  regex?: RegExp;
  /** The matcher as written, for messages and logs. */
  text: string;
}

const MATCHER = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"\s,{}]*))\s*$/;

/** Parses one matcher; throws with a message saying what is wrong. */
export function parseMatcher(text: string): Matcher {
  const m = MATCHER.exec(text);
  if (!m) throw new Error(`not a matcher: ${JSON.stringify(text)} (expected e.g. alertname="RedisMemoryHigh" or severity=~"warning|critical")`);
  const name = m[1] as string;
  const op = m[2] as MatchOp;
  const raw = m[3] !== undefined ? m[3].replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c)) : (m[4] ?? '');
  const matcher: Matcher = { name, op, value: raw, text: text.trim() };
  if (op === '=~' || op === '!~') {
    try {
      matcher.regex = new RegExp(`^(?:${raw})$`, 'u');
    } catch (err) {
      throw new Error(`bad regular expression in ${JSON.stringify(text)}: ${(err as Error).message}`);
    }
  }
  return matcher;
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
