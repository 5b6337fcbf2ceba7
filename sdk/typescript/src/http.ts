/** What one HTTP exchange with the control plane came to. */
export type HttpOutcome =
  | { kind: 'answer'; status: number; body: unknown; retryAfterMs: number | null }
  | { kind: 'network'; error: Error };

/**
 * One JSON request with a deadline. Never throws: a refused connection, a
 * timeout or an unreadable body is a `network` outcome the caller may retry.
 */
export async function requestJson(method: 'GET' | 'POST', url: string, o: { apiKey?: string; body?: unknown; timeoutMs: number }): Promise<HttpOutcome> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (o.apiKey) headers['x-api-key'] = o.apiKey;
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await fetch(url, {
      method,
      headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      signal: AbortSignal.timeout(o.timeoutMs),
      redirect: 'error',
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text === '' ? null : JSON.parse(text);
    } catch {
      // Not JSON (a proxy's error page): keep the text for the error message.
    }
    return { kind: 'answer', status: res.status, body, retryAfterMs: retryAfterMs(res.headers.get('retry-after')) };
  } catch (err) {
    return { kind: 'network', error: err instanceof Error ? err : new Error(String(err)) };
  }
}

/** Retry-After as seconds (the only form the control plane sends; HTTP dates are ignored). */
function retryAfterMs(v: string | null): number | null {
  if (v === null) return null;
  const s = Number(v);
  return Number.isFinite(s) && s >= 0 ? Math.min(s, 300) * 1000 : null;
}

/** The server's error message and code from an {ok:false, error, code} body, or a short excerpt of whatever it sent. */
export function describeAnswer(status: number, body: unknown): { message: string; code?: string; index?: number } {
  if (typeof body === 'object' && body !== null) {
    const b = body as Record<string, unknown>;
    const message = typeof b.error === 'string' ? b.error : JSON.stringify(body).slice(0, 200);
    return { message: `HTTP ${status}: ${message}`, code: typeof b.code === 'string' ? b.code : undefined, index: typeof b.index === 'number' ? b.index : undefined };
  }
  return { message: `HTTP ${status}${typeof body === 'string' && body !== '' ? `: ${body.slice(0, 200)}` : ''}` };
}

/** 5xx and 429 are worth retrying; other 4xx mean the request itself is wrong. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff and Jitter"): spreads a fleet of agents that lost the control plane
 * at the same moment. `random` is injectable for tests.
 */
export function backoffMs(failures: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.max(baseMs / 2, ceiling * random());
}
