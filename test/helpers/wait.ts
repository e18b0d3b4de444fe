// Bounded waits for a condition, instead of sleeps; and `elapse`, the one way a test lets time
// pass on purpose. Each test file picks its own budget.

/** A probe's answer: undefined or false means "not yet"; anything else is the awaited value. */
export type Probe<T> = () => T | undefined | false | Promise<T | undefined | false>;

export interface WaitOptions {
  /** Deadline for the whole wait, from its start (default 30 s unless `tries` is given). */
  timeoutMs?: number;
  /** Or a budget of probes: the wait fails after this many "not yet" answers. */
  tries?: number;
  /** Pause between probes (default 50 ms). */
  intervalMs?: number;
  /**
   * 'fail' (default): an error from the probe fails the wait at once, as a broken probe should.
   * 'retry': it counts as "not yet" (a server still starting); the last one is in the timeout's message.
   */
  onError?: 'fail' | 'retry';
  /** Appended to the timeout's message: the state the wait last saw, for the reader of a failure. */
  detail?: () => string;
}

/**
 * Probes until it answers something other than undefined or false, and resolves with that.
 * Fails naming `what` when the budget (deadline or tries) runs out. The probe always runs at
 * least once, and once more after the last pause, so a slow probe never loses its last chance.
 */
export async function until<T>(what: string, probe: Probe<T>, opts: WaitOptions = {}): Promise<T> {
  const intervalMs = opts.intervalMs ?? 50;
  const timeoutMs = opts.timeoutMs ?? (opts.tries === undefined ? 30_000 : undefined);
  const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  let lastError: unknown;
  for (let tries = 1; ; tries++) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      if (opts.onError !== 'retry') throw err;
      lastError = err;
    }
    const outOfTries = opts.tries !== undefined && tries >= opts.tries;
    const outOfTime = deadline !== undefined && Date.now() >= deadline;
    if (outOfTries || outOfTime) {
      const budget = outOfTries ? `${opts.tries} tries, ${intervalMs} ms apart` : `${timeoutMs} ms`;
      const last = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      const detail = opts.detail ? `: ${opts.detail()}` : '';
      throw new Error(`timed out waiting for ${what} (${budget})${last}${detail}`);
    }
    await pause(intervalMs);
  }
}

/**
 * Lets time pass because the passing of time is what the test is about (a cooldown to elapse,
 * a schedule to tick, a peer given the chance to do what it must not). `why` says which, for
 * the reader; a wait for something observable uses `until` instead. With a signal, an abort
 * ends it early with the signal's reason (a fake action's work, cut short like real work).
 */
export function elapse(ms: number, why: string, signal?: AbortSignal): Promise<void> {
  void why;
  if (!signal) return pause(ms);
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A file's `until` with its budget in probes (`tries` calls, `intervalMs` apart; a call may pass
 * its own): an error from the probe fails the wait at once.
 */
export function poller(defaults: { tries: number; intervalMs: number }) {
  return <T>(what: string, fn: Probe<T>, tries = defaults.tries, intervalMs = defaults.intervalMs): Promise<T> =>
    until(what, fn, { tries, intervalMs });
}

/**
 * A file's `until` with a deadline (a call may pass its own), polling every 50 ms: an error
 * from the probe counts as "not yet".
 */
export function eventuallyWithin(defaultTimeoutMs: number) {
  return <T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = defaultTimeoutMs): Promise<T> =>
    until<T>(what, fn, { timeoutMs, intervalMs: 50, onError: 'retry' });
}
