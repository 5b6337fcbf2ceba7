import { describe, expect, it } from 'vitest';
import { parseVitals } from '../../../src/domain/vitals.js';
import { inferRetries, invocationVitals, modelCallVitals } from '../../../src/integrations/otlp/genai-vitals.js';
import { agent, chat, genAi, tool } from './span-fixtures.js';

describe('invocationVitals', () => {
  it('sums tokens over model calls, counts tool calls and takes latency and time from the agent span', () => {
    const v = invocationVitals(genAi(agent(1, { start: 0, end: 1500, attributes: { 'gen_ai.agent.name': 'Planner' } })), [
      genAi(chat(2, 1, 100, 10)),
      genAi(tool(3, 1, 'search')),
      genAi(chat(4, 1, 200, 20, { start: 300, end: 400 })),
      genAi(tool(5, 1, 'search', { start: 400, end: 450 })),
      genAi(tool(6, 1, 'fetch', { start: 450, end: 500 })),
      genAi({ id: 7, parent: 1, attributes: { 'gen_ai.operation.name': 'embeddings', 'gen_ai.usage.input_tokens': 5 } }),
    ]);
    expect(v).toMatchObject({
      agent_id: 'a1', agent_type: 'Planner', latency_ms: 1500,
      input_tokens: 305, output_tokens: 30, token_count: 335,
      tool_calls: 3, tool_names: ['search', 'fetch'], retries: 0, success: true, error_type: '',
    });
    expect(v.timestamp).toBe(1_700_000_001.5);
    expect(parseVitals(v, 0)).toMatchObject({ agent_id: 'a1', tool_calls: 3 });
  });

  it('uses the agent span\'s own usage only when no model call reports usage (never both)', () => {
    const own = { 'gen_ai.usage.input_tokens': 1000, 'gen_ai.usage.output_tokens': 100 };
    expect(invocationVitals(genAi(agent(1, { attributes: own })), [genAi(chat(2, 1, 7, 3))])).toMatchObject({ input_tokens: 7, output_tokens: 3 });
    const silentChat = genAi({ id: 2, parent: 1, attributes: { 'gen_ai.operation.name': 'chat' } });
    expect(invocationVitals(genAi(agent(1, { attributes: own })), [silentChat])).toMatchObject({ input_tokens: 1000, output_tokens: 100 });
    expect(invocationVitals(genAi(agent(1)), [])).toMatchObject({ input_tokens: 0, output_tokens: 0, token_count: 0, tool_calls: 0 });
  });

  it('model, provider and prompt hash come from the agent span, else from its model calls', () => {
    const calls = [
      genAi(chat(2, 1, 1, 1, { start: 10, end: 20, attributes: { 'gen_ai.response.model': 'old', 'gen_ai.system': 'openai', 'gen_ai.system_instructions': 'p1' } })),
      genAi(chat(3, 1, 1, 1, { start: 30, end: 40, attributes: { 'gen_ai.response.model': 'new', 'gen_ai.system_instructions': 'p2' } })),
    ];
    const fromChildren = invocationVitals(genAi(agent(1)), calls);
    expect(fromChildren).toMatchObject({ model: 'new', provider: 'openai', prompt_hash: calls[0].promptHash });
    const own = invocationVitals(genAi(agent(1, { attributes: { 'gen_ai.request.model': 'agent-model', 'gen_ai.provider.name': 'anthropic', 'gen_ai.system_instructions': 'agent prompt' } })), calls);
    expect(own.model).toBe('agent-model');
    expect(own.provider).toBe('anthropic');
    expect(own.prompt_hash).not.toBe(calls[0].promptHash);
    expect(own.prompt_hash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('failure comes from the agent span; a failed model call that was retried is not a failed task', () => {
    const failedThenRetried = [genAi(chat(2, 1, 0, 0, { start: 0, end: 10, status: { code: 2 } })), genAi(chat(3, 1, 5, 5, { start: 20, end: 30 }))];
    expect(invocationVitals(genAi(agent(1)), failedThenRetried)).toMatchObject({ success: true, error_type: '', retries: 1 });
    expect(invocationVitals(genAi(agent(1, { attributes: { 'error.type': 'max_turns_exceeded' } })), [])).toMatchObject({ success: false, error_type: 'max_turns_exceeded' });
    expect(invocationVitals(genAi(agent(1, { status: { code: 2, message: 'crashed' } })), [])).toMatchObject({ success: false, error_type: 'span_error' });
  });

  it('an explicit retry count on the agent span wins over the heuristic', () => {
    const calls = [genAi(chat(2, 1, 0, 0, { start: 0, end: 10, status: { code: 2 } })), genAi(chat(3, 1, 5, 5, { start: 20, end: 30 }))];
    expect(invocationVitals(genAi(agent(1, { attributes: { 'gen_ai.retry.count': 4 } })), calls).retries).toBe(4);
  });

  it('keeps each tool name once, in first-use order, at most 256', () => {
    const tools = Array.from({ length: 300 }, (_, i) => genAi(tool(i + 2, 1, `t${i % 280}`, { start: i, end: i + 1 })));
    const v = invocationVitals(genAi(agent(1)), tools);
    expect(v.tool_calls).toBe(300);
    expect(v.tool_names).toHaveLength(256);
    expect(v.tool_names?.slice(0, 2)).toEqual(['t0', 't1']);
    expect(() => parseVitals(v, 0)).not.toThrow();
  });
});

describe('inferRetries', () => {
  const call = (id: number, start: number, end: number, failed: boolean) => genAi(chat(id, 1, 1, 1, { start, end, ...(failed ? { status: { code: 2 } } : {}) }));

  it('counts failed calls followed by a later call', () => {
    expect(inferRetries([call(2, 0, 10, true), call(3, 10, 20, true), call(4, 20, 30, false)])).toBe(2);
  });

  it('does not count a failure with nothing after it, nor calls running in parallel with it', () => {
    expect(inferRetries([call(2, 0, 10, false), call(3, 20, 30, true)])).toBe(0);
    expect(inferRetries([call(2, 0, 50, true), call(3, 10, 40, false)])).toBe(0);
    expect(inferRetries([])).toBe(0);
  });

  it('a zero-length failed call followed by one starting at the same instant is a retry', () => {
    expect(inferRetries([call(2, 10, 10, true), call(3, 10, 20, false)])).toBe(1);
    expect(inferRetries([call(2, 10, 10, true)])).toBe(0);
  });
});

describe('modelCallVitals', () => {
  it('is one record for a model call no agent owns', () => {
    const v = modelCallVitals(genAi(chat(2, undefined, 40, 8, { start: 0, end: 250, service: 'batch-summariser', attributes: { 'gen_ai.provider.name': 'openai', 'gen_ai.retry.count': 1 } })));
    expect(v).toMatchObject({ agent_id: 'batch-summariser', agent_type: 'otel', latency_ms: 250, input_tokens: 40, output_tokens: 8, token_count: 48, tool_calls: 0, retries: 1, success: true, model: 'gpt-4o', provider: 'openai', tool_names: [] });
    expect(v.timestamp).toBe(1_700_000_000.25);
    const failed = modelCallVitals(genAi(chat(2, undefined, 0, 0, { attributes: { 'error.type': 'content_filter' } })));
    expect(failed).toMatchObject({ success: false, error_type: 'content_filter' });
  });
});
