import type { Logger } from '../log.ts';
import { scrubText } from '../log.ts';
import { FileTail } from '../util/file-tail.ts';

// pgbouncer_errors_count{errmsg} from PgBouncer's log file. PgBouncer's admin console has no
// error counter, and the community alerts (awesome-prometheus-alerts' PgbouncerErrors and
// PgbouncerMaxConnections) select on `errmsg`, which is PgBouncer's own log text. Part of the
// pgbouncer collector (called from pgbouncer.ts), kept apart because it reads a file.
//
// PgBouncer 1.18 writes `<date> <time> <tz> [pid] LEVEL [C-0x…: db/user@addr:port ]message`.
// What counts, read from its source (send_pooler_error, admin_error) and the harness's log:
// - `WARNING … pooler error: <msg>`: an error PgBouncer sent to a client; errmsg is <msg>
//   (max_client_conn, failed logins, unknown databases, admin console mistakes, timeouts).
// - other WARNING, ERROR and FATAL lines, except an ERROR line PgBouncer answers with a pooler
//   error within the next few lines (same connection, or the same text for the admin console):
//   a refused password logs `ERROR … password authentication failed` and then
//   `pooler error: SASL authentication failed`, and that is one error, not two.
// LOG lines (`closing because: …`, server connections dropped) are not errors and not counted.

/** Distinct errmsg values per target; later ones are counted under errmsg="other". */
export const MAX_ERRMSGS = 50;
export const OTHER = 'other';
/** Bytes of log read per scrape at most; the rest waits for the next scrape. */
export const READ_BUDGET = 4 * 1024 * 1024;
/** How many lines after an ERROR line its pooler error may come. */
const ANSWER_WINDOW = 5;
const MAX_ERRMSG_LENGTH = 200;

/** Present from the start (at 0), so rate() sees the first one: the max-connections alert asks for it. */
const SEEDED = ['no more connections allowed (max_client_conn)'];

const LINE = /\[\d+\] (WARNING|ERROR|FATAL) (.*)$/;
const SOCKET = /^([CS]-0x[0-9a-fA-F]+: \S+) (.*)$/;
const POOLER = 'pooler error: ';

interface Entry {
  level: string;
  /** `C-0x…: db/user@addr:port`, or '' for process-wide lines. */
  socket: string;
  pooler: boolean;
  text: string;
}

function parse(line: string): Entry | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  const level = m[1]!;
  let rest = m[2]!;
  let socket = '';
  const s = SOCKET.exec(rest);
  if (s) {
    socket = s[1]!;
    rest = s[2]!;
  }
  const pooler = level === 'WARNING' && rest.startsWith(POOLER);
  return { level, socket, pooler, text: pooler ? rest.slice(POOLER.length) : rest };
}

/** The error messages the lines hold, one per error, raw (see normaliseErrmsg). */
export function errorMessages(lines: readonly string[]): string[] {
  const entries = lines.map(parse);
  const out: string[] = [];
  entries.forEach((e, i) => {
    if (e === undefined) return;
    if (e.level === 'ERROR') {
      const answered = entries
        .slice(i + 1, i + 1 + ANSWER_WINDOW)
        .some((n) => n !== undefined && n.pooler && ((e.socket !== '' && n.socket === e.socket) || n.text === e.text));
      if (answered) return;
    }
    out.push(e.text);
  });
  return out;
}

/**
 * The message with its variable parts replaced, so the label set stays bounded: quoted names,
 * addresses, hex ids, numbers, and a single trailing name after a colon ("no such database: x").
 */
export function normaliseErrmsg(raw: string): string {
  let s = raw
    .replace(/'[^']*'/g, "'?'")
    .replace(/"[^"]*"/g, '"?"')
    .replace(/\[[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\](?::\d+)?/g, 'ADDR')
    .replace(/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g, 'ADDR')
    .replace(/\b0x[0-9a-fA-F]+\b/g, '0x?')
    .replace(/(?<![\w.-])\d+(?:\.\d+)?(?![\w-])/g, 'N')
    .replace(/: [^\s:'"()]+$/, ': ?')
    .replace(/\s+/g, ' ')
    .trim();
  if (s.length > MAX_ERRMSG_LENGTH) s = `${s.slice(0, MAX_ERRMSG_LENGTH - 1)}…`;
  // Log text is not ours: never let a registered secret through into a label.
  return scrubText(s);
}

/** One target's log: the follower, the counts by errmsg, and whether the file is readable. */
export class PgBouncerLogErrors {
  private readonly tail: FileTail;
  private readonly target: string;
  readonly counts = new Map<string, number>(SEEDED.map((m) => [m, 0]));
  /** Undefined before the first read; logged on every change. */
  readable: boolean | undefined;

  constructor(target: string, file: string) {
    this.target = target;
    this.tail = new FileTail(file);
  }

  /** Reads what was appended since the last call (bounded); never throws. */
  async update(signal: AbortSignal, log: Logger): Promise<void> {
    let ok: boolean;
    try {
      const { lines } = await this.tail.read(READ_BUDGET, signal);
      for (const raw of errorMessages(lines)) this.count(normaliseErrmsg(raw));
      ok = true;
    } catch (err) {
      ok = false;
      if (this.readable !== false) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        log.warn({ collector: 'pgbouncer', target: this.target, file: this.tail.path, code }, 'PgBouncer log file unreadable; pgbouncer_errors_count stands still');
      }
    }
    if (ok && this.readable === false) log.info({ collector: 'pgbouncer', target: this.target, file: this.tail.path }, 'PgBouncer log file readable again');
    this.readable = ok;
  }

  private count(errmsg: string): void {
    const key = this.counts.has(errmsg) || this.counts.size < MAX_ERRMSGS ? errmsg : OTHER;
    // "other" may take the 51st place: the cap is documented as 50 messages plus "other".
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  async close(): Promise<void> {
    await this.tail.close();
  }
}
