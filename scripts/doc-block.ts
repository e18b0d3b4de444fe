// The generated parts of docs/*.md live between `<!-- NAME:begin -->` and `<!-- NAME:end -->`
// markers: one reader for the drift tests and one writer for the generators' `--write`.
import { readFileSync, writeFileSync } from 'node:fs';

const pattern = (name: string): RegExp => new RegExp(`<!-- ${name}:begin -->\\n([\\s\\S]*?)\\n?<!-- ${name}:end -->`);

/** The text between the markers, or undefined when the file has none. */
export function readBlock(file: string | URL, name: string): string | undefined {
  return pattern(name).exec(readFileSync(file, 'utf8'))?.[1];
}

/** Replaces the text between the markers (which must exist) with `body`. */
export function writeBlock(file: string | URL, name: string, body: string): void {
  const text = readFileSync(file, 'utf8');
  if (!pattern(name).test(text)) throw new Error(`${String(file)} has no ${name} markers`);
  writeFileSync(file, text.replace(pattern(name), () => `<!-- ${name}:begin -->\n${body}\n<!-- ${name}:end -->`));
}

/** A generator's command line: `--write` updates the block, otherwise the text goes to stdout. */
export function generatorMain(file: URL, name: string, produce: () => string): void {
  if (process.argv.includes('--write')) writeBlock(file, name, produce());
  else process.stdout.write(`${produce()}\n`);
}
