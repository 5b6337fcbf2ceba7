import { decodeOverview } from './compact';
import type { AgentDetail, AgentSummary, Overview, Session } from './types';

/** A failed API call, carrying the server's message and IMM_ERR_* code so the operator sees what went wrong. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

async function readJson<T>(res: Response): Promise<T> {
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    // A proxy's HTML error page, for instance: report the status instead of a parse error.
  }
  if (!res.ok) {
    const b = (body ?? {}) as { error?: string; code?: string };
    throw new ApiError(b.error ?? `HTTP ${res.status} ${res.statusText}`, res.status, b.code ?? 'HTTP_' + res.status);
  }
  return body as T;
}

export type Action = 'approve' | 'reject' | 'heal' | 'quarantine' | 'release' | 'accept-baseline';

/** The dashboard's HTTP client. Same-origin: the session cookie rides along; writes carry the CSRF token. */
export class Api {
  csrf = '';

  constructor(private readonly base = '') {}

  private async get<T>(path: string): Promise<T> {
    return readJson<T>(await fetch(this.base + path, { credentials: 'same-origin', headers: { accept: 'application/json' } }));
  }

  private async post<T>(path: string, body: unknown = {}): Promise<T> {
    const res = await fetch(this.base + path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': this.csrf },
      body: JSON.stringify(body),
    });
    return readJson<T>(res);
  }

  /** Who is logged in; `pending` is a request already in flight (started by index.html). */
  async session(pending?: Promise<Response>): Promise<Session> {
    const s = pending ? await readJson<Session>(await pending) : await this.get<Session>('/api/v1/session');
    this.csrf = s.csrf_token;
    return s;
  }

  login(token: string): Promise<{ ok: boolean; role: string }> {
    return this.post('/api/v1/session', { token });
  }

  logout(): Promise<unknown> {
    return this.post('/api/v1/logout');
  }

  /** The overview; `pending` is a request already in flight (started by index.html before the bundle loaded). */
  async overview(pending?: Promise<Response>): Promise<Overview> {
    // The compact form (agents as positional rows) is about 2.5× smaller to build, send and parse.
    return decodeOverview(pending ? await readJson(await pending) : await this.get('/api/v1/overview?form=compact'));
  }

  agent(id: string): Promise<AgentDetail> {
    return this.get(`/api/v1/agents/${encodeURIComponent(id)}`);
  }

  act(id: string, action: Action, reason?: string): Promise<{ ok: boolean; agent?: AgentSummary }> {
    return this.post(`/api/v1/agents/${encodeURIComponent(id)}/${action}`, reason ? { reason } : {});
  }

  feedback(id: string, diagnosis: string, note?: string): Promise<{ ok: boolean; agent?: AgentSummary }> {
    return this.post(`/api/v1/agents/${encodeURIComponent(id)}/feedback`, note ? { diagnosis, note } : { diagnosis });
  }

  approveAll(): Promise<{ ok: boolean; approved_count: number; agents?: AgentSummary[] }> {
    return this.post('/api/v1/approvals/approve-all');
  }

  rejectAll(): Promise<{ ok: boolean; rejected_count: number; agents?: AgentSummary[] }> {
    return this.post('/api/v1/approvals/reject-all');
  }

  healAll(): Promise<{ ok: boolean; healed_count: number; agents?: AgentSummary[] }> {
    return this.post('/api/v1/rejected/heal-all');
  }
}
