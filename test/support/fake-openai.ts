import { startScriptedServer, type RecordedRequest, type ScriptedReply } from './scripted-http.js';

/** How the fake model answers one request. */
export interface FakeCompletion {
  model: string;
  prompt_tokens: number;
  /** Tokens the model would generate; capped by the request's max_tokens / max_completion_tokens. */
  completion_tokens: number;
  /** Functions the model calls (each becomes one tool_call). */
  tool_calls: string[];
  /** Fail instead of answering: HTTP status (e.g. 500, 429) and optional Retry-After seconds. */
  fail?: { status: number; retry_after?: number };
}

export interface FakeOpenAI {
  /** Base URL for the openai client (ends in /v1). */
  baseURL: string;
  requests: RecordedRequest[];
  /** Chooses the answer per request (the request body is the client's params). */
  behave(fn: (params: Record<string, unknown>) => FakeCompletion): void;
  close(): Promise<void>;
}

export const DEFAULT_COMPLETION: FakeCompletion = { model: 'gpt-4o-mini-2024-07-18', prompt_tokens: 120, completion_tokens: 40, tool_calls: [] };

/**
 * A small OpenAI-compatible server (POST /v1/chat/completions, plain and
 * streaming) on loopback, so tests run the real `openai` package end to end
 * without a network or an account.
 */
export async function startFakeOpenAI(initial: (params: Record<string, unknown>) => FakeCompletion = () => DEFAULT_COMPLETION): Promise<FakeOpenAI> {
  let behaviour = initial;
  let n = 0;
  const server = await startScriptedServer((req): ScriptedReply => {
    if (req.method !== 'POST' || req.path !== '/v1/chat/completions') return { status: 404, body: { error: { message: `no route ${req.method} ${req.path}`, type: 'invalid_request_error' } } };
    const params = (req.body ?? {}) as Record<string, unknown>;
    const c = behaviour(params);
    if (c.fail) {
      return { status: c.fail.status, body: { error: { message: `fake failure ${c.fail.status}`, type: c.fail.status === 429 ? 'rate_limit_exceeded' : 'server_error', code: null } }, headers: c.fail.retry_after !== undefined ? { 'retry-after': String(c.fail.retry_after) } : {} };
    }
    const cap = Number(params.max_completion_tokens ?? params.max_tokens ?? Infinity);
    const completion = Math.min(c.completion_tokens, cap);
    const id = `chatcmpl-fake${++n}`;
    const calls = c.tool_calls.map((name, i) => ({ id: `call_${i}_${name}`, type: 'function' as const, function: { name, arguments: '{}' } }));
    const usage = { prompt_tokens: c.prompt_tokens, completion_tokens: completion, total_tokens: c.prompt_tokens + completion };
    if (params.stream === true) {
      const includeUsage = (params.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
      const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1_700_000_000, model: c.model, choices, ...extra })}\n\n`;
      let sse = chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
      if (calls.length === 0) sse += chunk([{ index: 0, delta: { content: 'ok' }, finish_reason: null }]);
      calls.forEach((call, i) => {
        // Like OpenAI: the first delta of a call carries id and name, later ones only argument fragments.
        sse += chunk([{ index: 0, delta: { tool_calls: [{ index: i, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] }, finish_reason: null }]);
        sse += chunk([{ index: 0, delta: { tool_calls: [{ index: i, function: { arguments: '{}' } }] }, finish_reason: null }]);
      });
      sse += chunk([{ index: 0, delta: {}, finish_reason: calls.length > 0 ? 'tool_calls' : 'stop' }]);
      if (includeUsage) sse += chunk([], { usage });
      sse += 'data: [DONE]\n\n';
      return { status: 200, body: sse, headers: { 'content-type': 'text/event-stream' } };
    }
    return {
      status: 200,
      body: {
        id,
        object: 'chat.completion',
        created: 1_700_000_000,
        model: c.model,
        choices: [{ index: 0, message: { role: 'assistant', content: calls.length > 0 ? null : 'ok', refusal: null, ...(calls.length > 0 ? { tool_calls: calls } : {}) }, finish_reason: calls.length > 0 ? 'tool_calls' : 'stop', logprobs: null }],
        usage,
      },
    };
  });
  return {
    baseURL: `${server.url}/v1`,
    requests: server.requests,
    behave: (fn) => {
      behaviour = fn;
    },
    close: () => server.close(),
  };
}
