// Bounded waits for a condition, instead of sleeps. Each test file picks its own budget.

type Probe<T> = () => T | undefined | false | Promise<T | undefined | false>;

/**
 * A poller with default budget `tries` calls, `intervalMs` apart (a call may pass its own):
 * it resolves with the first result other than undefined or false. An error from the probe
 * is not retried: it fails the wait at once.
 */
export function poller(defaults: { tries: number; intervalMs: number }) {
  return async <T>(what: string, fn: Probe<T>, tries = defaults.tries, intervalMs = defaults.intervalMs): Promise<T> => {
    for (let i = 0; i < tries; i++) {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
}

/**
 * A waiter with default deadline `timeoutMs` (a call may pass its own): it polls every 50 ms
 * and resolves with the first result other than undefined. An error from the probe counts as
 * "not yet"; the last one is in the timeout's message.
 */
export function eventuallyWithin(defaultTimeoutMs: number) {
  return async <T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = defaultTimeoutMs): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const v = await fn();
        if (v !== undefined) return v;
      } catch (err) {
        last = err;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
  };
}
