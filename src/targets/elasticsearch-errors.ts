import { esModule } from './elasticsearch.ts';

// What the Elasticsearch collector and actions read from the official client's errors: the
// HTTP status and Elasticsearch's own error type and reason (the documented error body,
// { error: { type, reason, ... }, status }). Never the request's URL or headers: a short,
// secret-free account is all that reaches errors and logs.

interface ErrorBody {
  error?: { type?: string; reason?: string } | string;
}

/** The client's ResponseError in `err` or in its `cause` (what `step` wraps), if any. */
function responseError(err: unknown) {
  const e = err instanceof Error && err.cause !== undefined ? err.cause : err;
  // esModule(), not a static import: the client loads only where Elasticsearch is configured.
  return e instanceof esModule().errors.ResponseError ? e : undefined;
}

/** The HTTP status and Elasticsearch's error type of a failed request (both undefined for a non-HTTP failure). */
export function errorType(err: unknown): { status: number | undefined; type: string | undefined } {
  const e = responseError(err);
  if (!e) return { status: undefined, type: undefined };
  const body = (e.body as ErrorBody | undefined)?.error;
  return { status: e.statusCode, type: typeof body === 'string' ? undefined : body?.type };
}

/** 404 index_not_found_exception: a concrete index name that does not exist. */
export function isIndexNotFound(err: unknown): boolean {
  const e = errorType(err);
  return e.status === 404 && e.type === 'index_not_found_exception';
}

/** A short, secret-free account of a client error: status, Elasticsearch's error type and reason. */
export function describeError(err: unknown): string {
  if (err instanceof esModule().errors.ResponseError) {
    const e = (err.body as ErrorBody | undefined)?.error;
    const detail = typeof e === 'string' ? e : [e?.type, e?.reason].filter((x) => x).join(': ');
    return `HTTP ${err.statusCode ?? '?'}${detail ? ` ${detail}` : ''}`;
  }
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * Runs one request; a failure becomes an Error naming the request, the status and
 * Elasticsearch's reason (no URL, no credentials). `keepCause` keeps the client's error as
 * `cause`, for callers that branch on its type (errorType reads it there); the collector does
 * not, so its logged errors hold only the short account.
 */
export async function step<T>(what: string, run: () => Promise<T>, opts: { keepCause?: boolean } = {}): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw new Error(`${what}: ${describeError(err)}`, opts.keepCause ? { cause: err } : undefined);
  }
}
