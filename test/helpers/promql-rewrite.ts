// Rewrites of PromQL text through the Prometheus project's own grammar
// (@prometheus-io/lezer-promql), for tests that evaluate expressions written elsewhere:
// - withLabelMatcher: add `label="value"` to every vector selector, e.g. to ask one scrape
//   job for the same expression another job answers;
// - comparisonsAsBool: give the outermost comparisons the `bool` modifier, so an alert's
//   expression returns the quantity it compares (0/1 for every series it can see) instead of
//   nothing while the alert does not fire.
// Both edit the text at the parser's offsets, so everything else stays byte for byte.
import { parser } from '@prometheus-io/lezer-promql';

/** A node of lezer-promql's tree (@lezer/common's SyntaxNode, reached through the parser's own types). */
type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

export class PromqlRewriteError extends Error {}

interface Edit {
  at: number;
  text: string;
}

function applyEdits(expr: string, edits: Edit[]): string {
  let out = expr;
  // From the end, so earlier offsets stay valid.
  for (const e of [...edits].sort((a, b) => b.at - a.at)) out = out.slice(0, e.at) + e.text + out.slice(e.at);
  return out;
}

function parse(expr: string): SyntaxNode {
  const tree = parser.parse(expr);
  tree.iterate({
    enter(n) {
      if (n.type.isError) throw new PromqlRewriteError(`PromQL syntax error at offset ${n.from} of: ${expr}`);
    },
  });
  return tree.topNode;
}

/** `expr` with `label="value"` added to every vector selector (bare names and `{...}` alike). */
export function withLabelMatcher(expr: string, label: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(label)) throw new PromqlRewriteError(`not a label name: ${label}`);
  const matcher = `${label}=${JSON.stringify(value)}`;
  const edits: Edit[] = [];
  parse(expr).cursor().iterate((n) => {
    if (n.name !== 'VectorSelector') return;
    const matchers = n.node.getChild('LabelMatchers');
    if (!matchers) {
      edits.push({ at: n.to, text: `{${matcher}}` });
      return;
    }
    const empty = /^\{\s*\}$/.test(expr.slice(matchers.from, matchers.to));
    edits.push({ at: matchers.from + 1, text: empty ? matcher : `${matcher}, ` });
  });
  if (edits.length === 0) throw new PromqlRewriteError(`no vector selector in: ${expr}`);
  return applyEdits(expr, edits);
}

const COMPARISONS = new Set(['Gtr', 'Lss', 'Gte', 'Lte', 'Eql', 'Neq']);
const SET_OPERATORS = new Set(['And', 'Or', 'Unless']);

/**
 * `expr` with `bool` on its outermost comparisons: the top-level one, and those that are
 * direct operands of top-level `and`/`or`/`unless`. Comparisons inside functions,
 * aggregations or parentheses stay filters (they are part of what the expression measures).
 */
export function comparisonsAsBool(expr: string): string {
  const edits: Edit[] = [];
  const visit = (node: SyntaxNode | null): void => {
    if (!node) return;
    if (node.name === 'PromQL' || node.name === 'OffsetExpr') return visit(node.firstChild);
    if (node.name !== 'BinaryExpr') return;
    for (let c = node.firstChild; c; c = c.nextSibling) {
      if (COMPARISONS.has(c.name)) {
        if (c.nextSibling?.name !== 'BoolModifier') edits.push({ at: c.to, text: ' bool' });
        return;
      }
      if (SET_OPERATORS.has(c.name)) {
        visit(node.firstChild);
        visit(node.lastChild);
        return;
      }
    }
  };
  visit(parse(expr));
  return applyEdits(expr, edits);
}
