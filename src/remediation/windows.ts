// Maintenance windows: days of the week and a start-end time of day in a timezone, e.g. the
// runbook's "weekly Sunday 1-5 AM PST" = { days: [sun], start: "01:00", end: "05:00",
// timezone: America/Los_Angeles }. The timezone's rules (PST/PDT) come from the runtime's
// ICU data through Intl, so daylight saving needs no code of ours.

export const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Day = (typeof DAYS)[number];

export interface Window {
  days: Day[];
  /** Minutes after local midnight. An end at or before start wraps past midnight. */
  startMin: number;
  endMin: number;
  timezone: string;
}

export function parseClock(text: string): number {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a time of day (HH:MM, 24-hour)`);
  return Number(m[1]) * 60 + Number(m[2]);
}

export function checkTimezone(tz: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new Error(`unknown timezone "${tz}" (use an IANA name such as America/Los_Angeles)`);
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Weekday and minute of day of an instant, in a timezone. */
export function localTime(at: Date, tz: string): { day: Day; minute: number } {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(tz, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  const day = String(parts['weekday']).toLowerCase().slice(0, 3) as Day;
  return { day, minute: Number(parts['hour']) * 60 + Number(parts['minute']) };
}

/** Is the instant inside the window? A window that wraps midnight belongs to its start day. */
export function inWindow(w: Window, at: Date): boolean {
  const { day, minute } = localTime(at, w.timezone);
  if (w.startMin < w.endMin) return w.days.includes(day) && minute >= w.startMin && minute < w.endMin;
  const prev = DAYS[(DAYS.indexOf(day) + 6) % 7] as Day;
  return (w.days.includes(day) && minute >= w.startMin) || (w.days.includes(prev) && minute < w.endMin);
}

export function inAnyWindow(ws: readonly Window[], at: Date): boolean {
  return ws.some((w) => inWindow(w, at));
}

/** The next minute at which any of the windows is open, within 8 days; undefined if none. */
export function nextWindowStart(windows: readonly Window[], from: Date): Date | undefined {
  const start = Math.ceil(from.getTime() / 60_000) * 60_000;
  for (let t = start; t < start + 8 * 86_400_000; t += 60_000) {
    const d = new Date(t);
    if (inAnyWindow(windows, d)) return d;
  }
  return undefined;
}
