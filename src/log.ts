import { pino, type Logger, type LevelWithSilent } from 'pino';

// Every secret the config holds (passwords in URLs, tokens) is registered here, and every
// log line is scrubbed of them before it is written. Targets are named in logs by their
// config name; this is the net under that rule, for driver errors that echo what they got.
const secrets = new Set<string>();

export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 3) secrets.add(value);
  if (value && value.length >= 3) {
    const enc = encodeURIComponent(value);
    if (enc !== value) secrets.add(enc);
  }
}

export function scrubText(text: string): string {
  let out = text;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join('***');
  }
  return out;
}

/** Returns a copy of the value with every registered secret replaced by ***. */
export function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    const out: Record<string, unknown> = {
      type: value.name,
      message: scrubText(value.message),
      stack: value.stack ? scrubText(value.stack) : undefined,
    };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out['code'] = code;
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
  return out;
}

/** A URL with its password replaced, for the rare place a URL must be shown. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}

export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'housekeeper' },
      hooks: {
        logMethod(args, method) {
          const clean = args.map((a) => scrub(a)) as Parameters<typeof method>;
          method.apply(this, clean);
        },
      },
    },
    destination ?? process.stdout,
  );
}

export type { Logger };
