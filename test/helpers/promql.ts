// The metric names a PromQL expression selects, for test/alerts.test.ts's check that every
// alert names a metric that exists.
//
// A tokenizer, not a full parser: PromQL's metric names can only appear as the bare
// identifier of a vector selector (or as `{__name__="..."}`), and everything else that looks
// like an identifier can be told apart by what surrounds it:
//   - strings ("...", '...', `...`): label_replace's arguments, regexes, matcher values;
//   - `{...}`: label matchers, whose names are labels (a `__name__` matcher names a metric);
//   - `[...]`: ranges and subquery steps;
//   - an identifier followed by `(`: a function or an aggregation (`rate(`, `sum (`);
//   - an aggregation followed by `by`/`without`: `sum by (target) (...)`;
//   - keywords: the set operators, `bool`, `offset`, `inf`/`nan`, and the grouping
//     keywords `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`, whose
//     parenthesised lists are label names;
//   - numbers and durations (`0.8`, `1e3`, `0x1f`, `5m`, `1h30m`), and `#` comments.
// Syntax errors are promtool's business (test/alerts.test.ts runs `promtool check rules` on
// the same files); this only has to find every name in an expression promtool accepts.
// When the Prometheus project's own grammar (@prometheus-io/lezer-promql) is installed,
// test/alerts.test.ts cross-checks this against it.

const SET_AND_MISC = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const AGGREGATIONS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile',
]);

const isIdentStart = (c: string): boolean => /[A-Za-z_:]/.test(c);
const isIdentPart = (c: string): boolean => /[A-Za-z0-9_:]/.test(c);

export class PromqlScanError extends Error {}

/** The metric names `expr` selects, sorted and without duplicates. Throws PromqlScanError on what it cannot read. */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  let i = 0;
  const n = expr.length;

  const fail = (what: string): never => {
    throw new PromqlScanError(`${what} at offset ${i} of: ${expr}`);
  };
  const skipSpace = (): void => {
    for (;;) {
      while (i < n && /\s/.test(expr[i] as string)) i++;
      if (expr[i] !== '#') return;
      while (i < n && expr[i] !== '\n') i++;
    }
  };
  /** Reads a quoted string starting at i; returns its (unescaped enough) content. */
  const readString = (): string => {
    const quote = expr[i] as string;
    let out = '';
    i++;
    while (i < n && expr[i] !== quote) {
      if (expr[i] === '\\' && quote !== '`') {
        out += expr[i + 1] ?? '';
        i += 2;
      } else {
        out += expr[i];
        i++;
      }
    }
    if (i >= n) fail('unterminated string');
    i++;
    return out;
  };
  const readIdent = (): string => {
    const start = i;
    while (i < n && isIdentPart(expr[i] as string)) i++;
    return expr.slice(start, i);
  };
  /** `{ name op "value", ... }`: only a __name__ matcher names a metric. */
  const readMatchers = (): void => {
    i++; // {
    for (;;) {
      skipSpace();
      if (expr[i] === '}') {
        i++;
        return;
      }
      if (!isIdentStart(expr[i] ?? '')) fail('expected a label name');
      const label = readIdent();
      skipSpace();
      const op = /^(=~|!~|!=|=)/.exec(expr.slice(i))?.[1] ?? fail('expected a matcher operator');
      i += op.length;
      skipSpace();
      if (!['"', "'", '`'].includes(expr[i] ?? '')) fail('expected a quoted label value');
      const value = readString();
      if (label === '__name__') {
        if (op !== '=') fail(`a ${op} matcher on __name__ cannot be checked`);
        names.add(value);
      }
      skipSpace();
      if (expr[i] === ',') i++;
      else if (expr[i] !== '}') fail('expected , or }');
    }
  };
  /** A parenthesised list of label names after a grouping keyword, if there is one. */
  const skipLabelList = (): void => {
    skipSpace();
    if (expr[i] !== '(') return;
    const close = expr.indexOf(')', i);
    if (close < 0) fail('unterminated label list');
    i = close + 1;
  };
  const peekWord = (): string => {
    const save = i;
    skipSpace();
    const w = isIdentStart(expr[i] ?? '') ? readIdent() : '';
    i = save;
    return w.toLowerCase();
  };
  const peekChar = (): string => {
    const save = i;
    skipSpace();
    const c = expr[i] ?? '';
    i = save;
    return c;
  };

  while (i < n) {
    skipSpace();
    if (i >= n) break;
    const c = expr[i] as string;
    if (c === '"' || c === "'" || c === '`') {
      readString();
    } else if (c === '{') {
      readMatchers();
    } else if (c === '[') {
      const close = expr.indexOf(']', i);
      if (close < 0) fail('unterminated range');
      i = close + 1;
    } else if (/[0-9.]/.test(c)) {
      while (i < n && /[0-9A-Za-z_.]/.test(expr[i] as string)) i++;
    } else if (isIdentStart(c)) {
      const word = readIdent();
      const lower = word.toLowerCase();
      if (GROUPING.has(lower)) skipLabelList();
      else if (SET_AND_MISC.has(lower)) continue;
      else if (peekChar() === '(') continue; // a function or an aggregation
      else if (AGGREGATIONS.has(word) && ['by', 'without'].includes(peekWord())) continue;
      else names.add(word);
    } else {
      i++; // operators, parentheses, commas, @
    }
  }
  return [...names].sort();
}

/** The subset of @prometheus-io/lezer-promql this file uses (it is an optional dev dependency). */
interface LezerNode {
  name: string;
  from: number;
  to: number;
  type: { isError: boolean };
  node: { parent: { name: string } | null; getChild(name: string): { from: number; to: number } | null };
}
export interface LezerPromql {
  parser: { parse(text: string): { iterate(spec: { enter(node: LezerNode): boolean | void }): void } };
}

/** The same names from the Prometheus project's own grammar, for the cross-check. */
export function metricNamesLezer(lezer: LezerPromql, expr: string): string[] {
  const names = new Set<string>();
  lezer.parser.parse(expr).iterate({
    enter(node) {
      if (node.type.isError) throw new PromqlScanError(`lezer-promql: syntax error at offset ${node.from} of: ${expr}`);
      if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector') names.add(expr.slice(node.from, node.to));
      if (node.name === 'UnquotedLabelMatcher' || node.name === 'LabelMatcher') {
        const label = node.node.getChild('LabelName');
        const value = node.node.getChild('StringLiteral');
        if (label && value && expr.slice(label.from, label.to) === '__name__') names.add(JSON.parse(expr.slice(value.from, value.to)) as string);
      }
    },
  });
  return [...names].sort();
}

/** Loads @prometheus-io/lezer-promql when it is installed; undefined when it is not. */
export async function loadLezer(): Promise<LezerPromql | undefined> {
  // A variable specifier: the package is optional, so tsc must not resolve it.
  const specifier = '@prometheus-io/lezer-promql';
  try {
    return (await import(specifier)) as LezerPromql;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}
