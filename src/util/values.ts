// Values from database rows (pg's JS values: numbers, strings for int8/numeric/text, booleans,
// null) and from text protocols, read one way everywhere. A value that is missing (NULL,
// absent, blank) or not a number is undefined, never a made-up 0 or a NaN: a collector then
// leaves the series out, and an action says what 0 would mean where it means one (`?? 0`).

/**
 * A finite number, or undefined for null, undefined, a blank string, text that is not a
 * number ('NaN', 'abc'), ±Infinity and anything else (objects, arrays). Numeric text as
 * Number reads it ('1e3' is 1000, ' 12 ' is 12); int8 and numeric text beyond 2^53 is
 * rounded to the nearest double. Booleans are 1 and 0.
 */
export function num(v: unknown): number | undefined {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'bigint' || typeof v === 'boolean') n = Number(v);
  else if (typeof v === 'string' && v.trim() !== '') n = Number(v);
  else return undefined;
  return Number.isFinite(n) ? n : undefined;
}

/** Text, with '' for null and undefined (labels and messages have no NULL). */
export function str(v: unknown): string {
  return v === null || v === undefined ? '' : String(v);
}
