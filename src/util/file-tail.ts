import { open, stat, type FileHandle } from 'node:fs/promises';

// Follows a log file across calls the way `tail -F` does: each call returns the complete
// lines appended since the previous one. Rotation by rename (a new inode at the path) first
// drains what was still written to the old file, then starts the new one from its beginning;
// truncation (size below what was read) starts again from 0. The file is opened at its end
// the first time, so a follower counts what happens while it runs, not the file's history.

const CHUNK = 64 * 1024;
/** A "line" longer than this without a newline is skipped, so one cannot stall the follower. */
const MAX_LINE = CHUNK;

export interface TailResult {
  lines: string[];
  /** Whether more was waiting than the byte budget allowed; the rest comes next call. */
  more: boolean;
}

interface Open {
  handle: FileHandle;
  ino: number;
  dev: number;
  /** Offset of the first byte not yet returned (always at a line start). */
  offset: number;
}

export class FileTail {
  readonly path: string;
  private current: Open | undefined;
  /** The previous file after a rename, drained before the new one is read. */
  private draining: Open | undefined;
  private started = false;

  constructor(path: string) {
    this.path = path;
  }

  /**
   * Reads at most `budget` bytes of complete lines. Throws (ENOENT, EACCES, ...) when the path
   * cannot be opened; lines drained from a rotated-away file are still returned first.
   */
  async read(budget: number, signal: AbortSignal): Promise<TailResult> {
    const lines: string[] = [];
    let left = budget;
    if (this.draining !== undefined) {
      const r = await readLines(this.draining, left, signal, lines);
      left -= r.bytes;
      if (r.more) return { lines, more: true };
      await this.draining.handle.close().catch(() => {});
      this.draining = undefined;
    }
    // Only the very first attempt starts at the end: a file that appears later is new.
    const first = !this.started;
    this.started = true;
    let st;
    try {
      st = await stat(this.path);
    } catch (err) {
      if (lines.length > 0) return { lines, more: false };
      throw err;
    }
    const cur = this.current;
    if (cur !== undefined && (cur.ino !== st.ino || cur.dev !== st.dev)) {
      // Rotated: the writer may still be appending to the old file until it reopens its log.
      this.draining = cur;
      this.current = undefined;
      const r = await readLines(cur, left, signal, lines);
      left -= r.bytes;
      if (r.more) return { lines, more: true };
      await cur.handle.close().catch(() => {});
      this.draining = undefined;
    }
    if (this.current === undefined) {
      const handle = await open(this.path, 'r');
      const opened = await handle.stat();
      // The first open starts at the end: the file's history is not this process's to count.
      const offset = first ? opened.size : 0;
      this.current = { handle, ino: opened.ino, dev: opened.dev, offset };
    } else if (st.size < this.current.offset) {
      this.current.offset = 0; // truncated (copytruncate rotation or `> file`)
    }
    const r = await readLines(this.current, left, signal, lines);
    return { lines, more: r.more };
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.current?.handle.close(), this.draining?.handle.close()]);
    this.current = undefined;
    this.draining = undefined;
  }
}

/** Appends the complete lines from f.offset on to `out`, reading at most `budget` bytes. */
async function readLines(f: Open, budget: number, signal: AbortSignal, out: string[]): Promise<{ bytes: number; more: boolean }> {
  let used = 0;
  let carry = Buffer.alloc(0);
  const buf = Buffer.alloc(CHUNK);
  while (used < budget) {
    if (signal.aborted) return { bytes: used, more: true };
    const want = Math.min(CHUNK, budget - used);
    const { bytesRead } = await f.handle.read(buf, 0, want, f.offset + carry.length);
    if (bytesRead === 0) return { bytes: used, more: false };
    used += bytesRead;
    const data = carry.length === 0 ? buf.subarray(0, bytesRead) : Buffer.concat([carry, buf.subarray(0, bytesRead)]);
    const last = data.lastIndexOf(0x0a);
    if (last < 0) {
      if (data.length >= MAX_LINE) {
        f.offset += data.length; // an endless line: skip it rather than stall
        carry = Buffer.alloc(0);
      } else {
        carry = Buffer.from(data);
      }
      continue;
    }
    for (const line of data.subarray(0, last).toString('utf8').split('\n')) out.push(line);
    f.offset += last + 1;
    carry = Buffer.from(data.subarray(last + 1));
  }
  return { bytes: used, more: true };
}
