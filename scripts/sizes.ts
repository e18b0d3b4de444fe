// The largest files and functions under a directory, in lines, for the closing notes'
// "largest file / largest function" figures and for spotting what to split next.
//   bash scripts/node.sh scripts/sizes.ts [dir=src] [--top N=5]
// A function's length runs from its first line to its last, comments and blank lines
// included (what a reader scrolls through); nested functions count in their parent too.

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

interface Size {
  name: string;
  lines: number;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

function lineCount(text: string): number {
  return text.length === 0 ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

/** A readable name for a function-like node: Class.method, name, or the variable it is assigned to. */
function nameOf(node: ts.SignatureDeclaration, sf: ts.SourceFile): string {
  const own = node.name && ts.isIdentifier(node.name) ? node.name.text : undefined;
  const parent = node.parent;
  if (ts.isClassLike(parent)) return `${parent.name?.text ?? '(class)'}.${ts.isConstructorDeclaration(node) ? 'constructor' : own ?? '(member)'}`;
  if (own) return own;
  if (ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (ts.isPropertyAssignment(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
  return `(anonymous, line ${line + 1})`;
}

function functionsOf(file: string, root: string): Size[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: Size[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({ name: `${relative(root, file)}: ${nameOf(node, sf)}`, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args[topAt + 1]) : 5;
const dir = args.find((a, i) => !a.startsWith('--') && i !== topAt + 1) ?? 'src';
const files = tsFiles(dir);
const bySize = (a: Size, b: Size): number => b.lines - a.lines || a.name.localeCompare(b.name);
const fileSizes = files.map((f) => ({ name: relative('.', f), lines: lineCount(readFileSync(f, 'utf8')) })).sort(bySize);
const fnSizes = files.flatMap((f) => functionsOf(f, '.')).sort(bySize);
console.log(`${dir}: ${files.length} files, ${fileSizes.reduce((n, f) => n + f.lines, 0)} lines`);
console.log('largest files:');
for (const f of fileSizes.slice(0, top)) console.log(`  ${String(f.lines).padStart(5)}  ${f.name}`);
console.log('largest functions:');
for (const f of fnSizes.slice(0, top)) console.log(`  ${String(f.lines).padStart(5)}  ${f.name}`);
