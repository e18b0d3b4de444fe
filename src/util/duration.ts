// Durations in config and rules are written the way Prometheus writes them ("500ms", "5s",
// "2m", "1h30m", "90d"), so operators use one notation across the stack.
const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;

/** Parses a duration such as "5s" or "1h30m" into milliseconds; throws on anything else. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '' ) throw new Error('empty duration');
  if (s === '0') return 0;
  PART.lastIndex = 0;
  let total = 0;
  let end = 0;
  for (let m = PART.exec(s); m !== null; m = PART.exec(s)) {
    total += Number(m[1]) * (UNITS[m[2] ?? ''] ?? Number.NaN);
    end = PART.lastIndex;
  }
  if (end !== s.length || !Number.isFinite(total)) {
    throw new Error(`"${text}" is not a duration (use e.g. 500ms, 5s, 2m, 1h30m, 90d)`);
  }
  return total;
}
