import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// housekeeper's version, from its package.json: one place to bump. The file sits one level up
// from src/ in a checkout and two levels up from dist/src/ in the image, so look upwards.

let cached: string | undefined;

export function version(): string {
  if (cached !== undefined) return cached;
  for (let dir = dirname(fileURLToPath(import.meta.url)), i = 0; i < 4; dir = dirname(dir), i++) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
    if (pkg.name === 'housekeeper' && typeof pkg.version === 'string') return (cached = pkg.version);
  }
  return (cached = 'unknown');
}
