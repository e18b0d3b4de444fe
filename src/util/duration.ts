// Durations in config and rules are read exactly as Prometheus reads them (model.ParseDuration),
// so one notation holds across the stack and a value copied from an alert's `for:` means the
// same here: integers with units y w d h m s ms, each unit at most once, largest first
// ("1h30m", "90d", "1y"), or a bare "0". A year is 365 days, a day 24 hours. No fractions
// ("1.5h"), no spaces, no sign.
const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;

// Milliseconds per unit, in the order of the capture groups above.
const UNIT_MS = [365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1].map(BigInt);

// Prometheus keeps a duration in Go's time.Duration (int64 nanoseconds, about 292 years) and
// refuses what does not fit.
const MAX_NS = 2n ** 63n - 1n;
const NS_PER_MS = 1_000_000n;

/** Parses a duration such as "5s" or "1h30m" into milliseconds; throws on anything else. */
export function parseDuration(text: string): number {
  if (text === '') throw new Error('empty duration');
  if (text === '0') return 0;
  const m = DURATION.exec(text);
  if (!m) throw new Error(`"${text}" is not a duration (integers with units y w d h m s ms, largest first, e.g. 500ms, 5s, 1h30m, 90d)`);
  let ns = 0n;
  UNIT_MS.forEach((unitMs, i) => {
    const digits = m[i + 1];
    if (digits === undefined) return;
    ns += BigInt(digits) * unitMs * NS_PER_MS;
  });
  if (ns > MAX_NS) throw new Error(`"${text}" is out of range (at most about 292 years)`);
  return Number(ns / NS_PER_MS);
}
