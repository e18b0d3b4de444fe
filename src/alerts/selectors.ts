import { parser } from '@prometheus-io/lezer-promql';
import { isMap, isScalar, isSeq, parseDocument, type Scalar } from 'yaml';

// The shipped alerts select housekeeper's series only, as monitoring mixins do: every vector
// selector carries a job selector (`job="housekeeper"` by default; node_exporter's series,
// `node_*`, get their own, `job="node"`). Without it the alerts would also fire on a
// same-named series from postgres_exporter or redis_exporter, which has no `target` label for
// a remediation to act on. Expressions are rewritten with Prometheus's own PromQL grammar
// (lezer-promql), not with regexes, so a selector inside a function, a subquery or a matrix
// is found like any other.

export interface Selectors {
  /** Matchers put on every selector of a housekeeper metric, e.g. `job="housekeeper"`. */
  selector: string;
  /** Matchers put on every selector of a node_exporter metric (`node_*`), e.g. `job="node"`. */
  nodeSelector: string;
}

export const DEFAULT_SELECTORS: Selectors = { selector: 'job="housekeeper"', nodeSelector: 'job="node"' };

/** node_exporter's metrics (alerts/host.yml); everything else the alerts name is housekeeper's. */
export function isNodeMetric(name: string | undefined): boolean {
  return name !== undefined && name.startsWith('node_');
}

export class SelectorError extends Error {}

type SyntaxNode = NonNullable<ReturnType<typeof parser.parse>['topNode']['firstChild']>;

interface Matcher {
  label: string;
  text: string;
}

const MATCHER_NODES = new Set(['UnquotedLabelMatcher', 'QuotedLabelMatcher', 'LabelMatcher']);

function syntaxCheck(expr: string, what: string): ReturnType<typeof parser.parse> {
  const tree = parser.parse(expr);
  tree.iterate({
    enter(n) {
      if (n.type.isError) throw new SelectorError(`${what}: PromQL syntax error at offset ${n.from}: ${expr}`);
    },
  });
  return tree;
}

function matchersOf(labelMatchers: SyntaxNode, text: string): Matcher[] {
  const out: Matcher[] = [];
  for (let c = labelMatchers.firstChild; c !== null; c = c.nextSibling) {
    if (c.name === 'LineComment') throw new SelectorError(`a comment inside a selector's braces is not supported: ${text}`);
    if (!MATCHER_NODES.has(c.name)) continue;
    const label = c.getChild('LabelName') ?? c.getChild('QuotedLabelName');
    if (label === null) throw new SelectorError(`a matcher without a label name: ${text.slice(c.from, c.to)}`);
    const raw = text.slice(label.from, label.to);
    out.push({ label: raw.startsWith('"') ? (JSON.parse(raw) as string) : raw, text: text.slice(c.from, c.to) });
  }
  return out;
}

/** The matchers of a selector given as `job="x"` or `job="x",env="prod"` (braces optional). */
export function parseSelector(selector: string): Matcher[] {
  const inner = selector.trim().replace(/^\{([^]*)\}$/, '$1');
  const text = `{${inner}}`;
  const tree = syntaxCheck(text, `selector ${JSON.stringify(selector)}`);
  const vs = tree.topNode.firstChild;
  const lm = vs?.name === 'VectorSelector' && vs.from === 0 && vs.to === text.length ? vs.getChild('LabelMatchers') : null;
  if (lm === null || lm === undefined) throw new SelectorError(`selector ${JSON.stringify(selector)} is not a list of label matchers like job="housekeeper"`);
  const matchers = matchersOf(lm, text);
  if (matchers.length === 0) throw new SelectorError(`selector ${JSON.stringify(selector)} has no matcher`);
  return matchers;
}

/** One vector selector of an expression: its metric name and its matchers. */
export interface SelectorUse {
  metric: string | undefined;
  matchers: Matcher[];
  from: number;
  to: number;
}

/** Every vector selector of an expression (inside matrices, subqueries and functions too). */
export function vectorSelectors(expr: string): SelectorUse[] {
  const tree = syntaxCheck(expr, 'expression');
  const out: SelectorUse[] = [];
  tree.iterate({
    enter(n) {
      if (n.name !== 'VectorSelector') return;
      const id = n.node.getChild('Identifier');
      const lm = n.node.getChild('LabelMatchers');
      const matchers = lm === null ? [] : matchersOf(lm, expr);
      const byName = matchers.find((m) => m.label === '__name__');
      let metric = id === null ? undefined : expr.slice(id.from, id.to);
      if (metric === undefined && byName !== undefined) {
        const v = /=\s*("(?:[^"\\]|\\.)*")$/.exec(byName.text);
        if (v?.[1] !== undefined) metric = JSON.parse(v[1]) as string;
      }
      out.push({ metric, matchers, from: n.from, to: n.to });
      return false;
    },
  });
  return out;
}

/**
 * The expression with every vector selector's matchers for the selector's labels replaced by
 * the selector (node_* metrics get the node selector). Other matchers are kept, after it.
 * Idempotent: applied to its own output with the same selectors it changes nothing.
 */
export function rewriteExpr(expr: string, selectors: Selectors): string {
  const own = parseSelector(selectors.selector);
  const node = parseSelector(selectors.nodeSelector);
  let out = expr;
  // From the end, so earlier offsets stay valid.
  for (const use of vectorSelectors(expr).reverse()) {
    const sel = isNodeMetric(use.metric) ? node : own;
    const replaced = new Set(sel.map((m) => m.label));
    const kept = use.matchers.filter((m) => !replaced.has(m.label));
    // A selector without a name keeps its __name__ matcher first, where it was.
    const byName = kept.filter((m) => m.label === '__name__');
    const others = kept.filter((m) => m.label !== '__name__');
    const name = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(expr.slice(use.from, use.to))?.[0] ?? '';
    const text = `${name}{${[...byName, ...sel, ...others].map((m) => m.text).join(',')}}`;
    out = out.slice(0, use.from) + text + out.slice(use.to);
  }
  return out;
}

interface Splice {
  from: number;
  to: number;
  text: string;
}

/** Where a scalar's value sits in the source, as splices that turn it into `next`. */
function spliceScalar(src: string, node: Scalar, next: string, where: string): Splice[] {
  const value = String(node.value);
  const [start, end] = node.range ?? [0, 0];
  if (node.type === 'PLAIN' && src.slice(start, end) === value && !next.includes('\n')) {
    return [{ from: start, to: end, text: next }];
  }
  if (node.type === 'BLOCK_LITERAL') {
    // Inserting matchers adds no line: line j of the new value replaces line j of the old,
    // under the block's indentation.
    const oldLines = value.split('\n');
    const newLines = next.split('\n');
    const body = src.indexOf('\n', start) + 1;
    const splices: Splice[] = [];
    let at = body;
    for (let j = 0; j < oldLines.length && at < end; j++) {
      const lineEnd = src.indexOf('\n', at) === -1 ? src.length : src.indexOf('\n', at);
      const line = src.slice(at, lineEnd);
      const oldLine = oldLines[j] ?? '';
      if (oldLine !== newLines[j]) {
        if (!line.endsWith(oldLine)) throw new SelectorError(`${where}: cannot find line ${j + 1} of the expression in the source`);
        splices.push({ from: lineEnd - oldLine.length, to: lineEnd, text: newLines[j] ?? '' });
      }
      at = lineEnd + 1;
    }
    return splices;
  }
  throw new SelectorError(`${where}: write the expression as a plain one-line scalar or a literal block (|), not ${node.type ?? 'this style'}`);
}

/**
 * A rule file (Prometheus's format) with the selectors set in every rule's expression. The
 * text is spliced, not re-serialised, so comments and layout stay as they were; the result
 * is re-parsed and checked.
 */
export function withSelectors(rulesYaml: string, selectors: Selectors, fileName = 'rules'): string {
  const doc = parseDocument(rulesYaml, { keepSourceTokens: false });
  if (doc.errors.length > 0) throw new SelectorError(`${fileName}: ${doc.errors[0]?.message ?? 'YAML error'}`);
  const groups = doc.get('groups');
  if (!isSeq(groups)) throw new SelectorError(`${fileName}: no groups: list`);
  const splices: Splice[] = [];
  const expected: string[] = [];
  for (const group of groups.items) {
    const rules = isMap(group) ? group.get('rules') : undefined;
    if (!isSeq(rules)) continue;
    for (const rule of rules.items) {
      if (!isMap(rule)) continue;
      const expr = rule.get('expr', true);
      if (!isScalar(expr)) continue;
      const name = String(rule.get('alert') ?? rule.get('record') ?? '?');
      const where = `${fileName}: rule ${name}`;
      let next: string;
      try {
        next = rewriteExpr(String(expr.value), selectors);
      } catch (err) {
        throw new SelectorError(`${where}: ${(err as Error).message}`);
      }
      expected.push(next);
      if (next !== String(expr.value)) splices.push(...spliceScalar(rulesYaml, expr, next, where));
    }
  }
  let out = rulesYaml;
  for (const s of splices.sort((a, b) => b.from - a.from)) out = out.slice(0, s.from) + s.text + out.slice(s.to);
  const check = exprsOf(out);
  if (check.length !== expected.length || check.some((e, i) => e !== expected[i])) {
    throw new SelectorError(`${fileName}: the rewritten file does not read back as written (a YAML quoting problem)`);
  }
  return out;
}

/** Every rule expression of a rule file, in order. */
export function exprsOf(rulesYaml: string): string[] {
  const data = parseDocument(rulesYaml).toJS() as { groups?: Array<{ rules?: Array<{ expr?: unknown }> }> } | null;
  return (data?.groups ?? []).flatMap((g) => (g.rules ?? []).flatMap((r) => (r.expr === undefined ? [] : [String(r.expr)])));
}
