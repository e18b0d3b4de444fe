// Shared by the Prometheus and Alertmanager starters: merging a test's extra YAML into the
// config the harness generates.
import { parse } from 'yaml';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isPlainObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Deep-merges `extra` (YAML text) into `base`: maps merge key by key, lists are appended
 * (so extra `scrape_configs`, `rule_files`, `routes` or `receivers` add to the generated
 * ones), anything else in `extra` replaces the generated value.
 */
export function mergeYamlConfig(base: Record<string, unknown>, extra: string | undefined, what: string): Record<string, unknown> {
  if (extra === undefined || extra.trim() === '') return base;
  let parsed: unknown;
  try {
    parsed = parse(extra);
  } catch (err) {
    throw new Error(`${what}: extraConfig is not valid YAML: ${(err as Error).message}`);
  }
  if (!isPlainObject(parsed)) throw new Error(`${what}: extraConfig must be a YAML mapping`);
  return merge(base, parsed);
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, bv] of Object.entries(b)) {
    const av = out[k];
    if (Array.isArray(av) && Array.isArray(bv)) out[k] = [...av, ...bv];
    else if (isPlainObject(av) && isPlainObject(bv)) out[k] = merge(av, bv);
    else out[k] = bv;
  }
  return out;
}
