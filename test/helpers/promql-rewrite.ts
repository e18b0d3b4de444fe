// A rewrite of PromQL text through the Prometheus project's own grammar
// (@prometheus-io/lezer-promql), for tests that evaluate alert expressions written elsewhere:
// comparisonsAsBool gives the outermost comparisons the `bool` modifier, so an alert's
// expression returns the quantity it compares (0/1 for every series it can see) instead of
// nothing while the alert does not fire. It edits the text at the parser's offsets, so
// everything else stays byte for byte. (Selectors are rewritten by src/alerts/selectors.ts.)
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
