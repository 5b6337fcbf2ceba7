import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { classifySpan, sanitizeAgentId } from '../../../src/integrations/otlp/genai-span.js';
import type { OtlpValue } from '../../../src/integrations/otlp/otlp-types.js';
import { genAi, otlpSpan, type Spec } from './span-fixtures.js';

const classify = (s: Partial<Spec>) => classifySpan(otlpSpan({ id: 1, ...s }));
const hash16 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

describe('classifySpan: which spans count', () => {
  it('skips spans without any gen_ai.* attribute', () => {
    expect(classify({ attributes: { 'http.request.method': 'POST' } })).toMatchObject({ ok: false, reason: 'no_genai_attributes' });
  });

  it('assigns roles from gen_ai.operation.name', () => {
    const role = (op: string, extra: Record<string, string | number> = {}) => {
      const c = classify({ attributes: { 'gen_ai.operation.name': op, ...extra } });
      return c.ok ? c.span.role : c.reason;
    };
    expect(role('invoke_agent')).toBe('agent');
    expect(role('execute_tool')).toBe('tool');
    for (const op of ['chat', 'text_completion', 'generate_content', 'embeddings']) expect(role(op)).toBe('model');
    expect(role('create_agent', { 'gen_ai.request.model': 'gpt-4o' })).toBe('unsupported_operation');
    expect(role('retrieval')).toBe('unsupported_operation');
    // An unknown operation that bills tokens is still a model call: its spend must not vanish.
    expect(role('vendor_magic', { 'gen_ai.usage.input_tokens': 5 })).toBe('model');
  });

  it('infers the role when an older instrumentation sends no operation name', () => {
    const role = (attributes: Record<string, string | number>) => {
      const c = classify({ attributes });
      return c.ok ? c.span.role : c.reason;
    };
    expect(role({ 'gen_ai.system': 'openai', 'gen_ai.request.model': 'gpt-3.5-turbo' })).toBe('model');
    expect(role({ 'gen_ai.usage.prompt_tokens': 3 })).toBe('model');
    expect(role({ 'gen_ai.tool.name': 'search' })).toBe('tool');
    expect(role({ 'gen_ai.agent.name': 'x' })).toBe('unsupported_operation');
  });

  it('refuses spans with unusable ids or times, saying why', () => {
    const chatAttrs = { 'gen_ai.operation.name': 'chat' };
    expect(classify({ trace: 'abc', attributes: chatAttrs })).toMatchObject({ ok: false, reason: 'invalid_span', detail: /trace_id/ });
    expect(classify({ trace: '0'.repeat(32), attributes: chatAttrs })).toMatchObject({ ok: false, reason: 'invalid_span' });
    expect(classify({ id: '0000000000000000', attributes: chatAttrs })).toMatchObject({ ok: false, reason: 'invalid_span', detail: /span_id/ });
    expect(classify({ parent: '12', attributes: chatAttrs })).toMatchObject({ ok: false, reason: 'invalid_span', detail: /parent_span_id/ });
    expect(classify({ start: 100, end: 50, attributes: chatAttrs })).toMatchObject({ ok: false, reason: 'invalid_span', detail: /end time is before start/ });
    const unset = otlpSpan({ id: 1, attributes: chatAttrs });
    unset.endTimeUnixNano = 0n;
    expect(classifySpan(unset)).toMatchObject({ ok: false, reason: 'invalid_span', detail: /must be set/ });
  });
});

describe('classifySpan: attributes read', () => {
  it('model: response.model over request.model; provider: provider.name over the legacy gen_ai.system', () => {
    expect(genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.response.model': 'gpt-4o-2024-08-06' } }).model).toBe('gpt-4o-2024-08-06');
    expect(genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o' } }).model).toBe('gpt-4o');
    expect(genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'aws.bedrock', 'gen_ai.system': 'openai' } }).provider).toBe('aws.bedrock');
    expect(genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.system': 'openai' } }).provider).toBe('openai');
  });

  it('tokens: input/output_tokens, else the legacy prompt/completion_tokens; absent stays undefined', () => {
    const s = genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.usage.input_tokens': 12, 'gen_ai.usage.output_tokens': 3, 'gen_ai.usage.prompt_tokens': 99 } });
    expect([s.inputTokens, s.outputTokens]).toEqual([12, 3]);
    const legacy = genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.usage.prompt_tokens': 7, 'gen_ai.usage.completion_tokens': '8' } });
    expect([legacy.inputTokens, legacy.outputTokens]).toEqual([7, 8]);
    const none = genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'chat' } });
    expect([none.inputTokens, none.outputTokens]).toEqual([undefined, undefined]);
    const bad = genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.usage.input_tokens': -4, 'gen_ai.usage.output_tokens': Number.NaN } });
    expect([bad.inputTokens, bad.outputTokens]).toEqual([undefined, undefined]);
  });

  it('agent id: gen_ai.agent.id, else gen_ai.agent.name, else service.name, sanitised', () => {
    const base = { 'gen_ai.operation.name': 'invoke_agent' };
    expect(genAi({ id: 1, attributes: { ...base, 'gen_ai.agent.id': 'asst_1', 'gen_ai.agent.name': 'Math Tutor' } })).toMatchObject({ agentId: 'asst_1', agentName: 'Math Tutor' });
    expect(genAi({ id: 1, attributes: { ...base, 'gen_ai.agent.name': 'Math Tutor' } }).agentId).toBe('Math_Tutor');
    expect(genAi({ id: 1, service: 'checkout agent (eu)', attributes: base })).toMatchObject({ agentId: 'checkout_agent__eu_', agentName: '' });
    expect(genAi({ id: 1, service: '', attributes: base }).agentId).toBe('unknown_service');
    expect(sanitizeAgentId('x'.repeat(300))).toHaveLength(128);
    expect(sanitizeAgentId('ok.id:v1@host/x-y')).toBe('ok.id:v1@host/x-y');
  });

  it('errors: error.type, else span status ERROR as "span_error"; success otherwise', () => {
    const op = { 'gen_ai.operation.name': 'chat' };
    expect(genAi({ id: 1, attributes: { ...op, 'error.type': 'timeout' } })).toMatchObject({ failed: true, errorType: 'timeout' });
    expect(genAi({ id: 1, attributes: { ...op, 'error.type': 'timeout' }, status: { code: 2, message: 'x' } })).toMatchObject({ failed: true, errorType: 'timeout' });
    expect(genAi({ id: 1, attributes: op, status: { code: 2, message: 'Rate limit reached for org-123 in 20s' } })).toMatchObject({ failed: true, errorType: 'span_error' });
    expect(genAi({ id: 1, attributes: op, status: { code: 1 } })).toMatchObject({ failed: false, errorType: '' });
  });

  it('tool name and explicit retry counts', () => {
    expect(genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'get_weather' } }).toolName).toBe('get_weather');
    expect(genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.retry.count': 2 } }).retries).toBe(2);
    expect(genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'chat', retries: 1 } }).retries).toBe(1);
    expect(genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'chat' } }).retries).toBeUndefined();
  });

  it('shortens long labels to the vitals limits instead of failing the record', () => {
    const s = genAi({ id: 1, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'm'.repeat(500), 'gen_ai.provider.name': 'p'.repeat(500), 'error.type': 'e'.repeat(500), 'gen_ai.agent.name': 'n'.repeat(500) } });
    expect([s.model.length, s.provider.length, s.errorType.length, s.agentName.length]).toEqual([128, 64, 128, 64]);
  });
});

describe('prompt hash', () => {
  const op = { 'gen_ai.operation.name': 'chat' };
  const prompt = 'You are a careful planner.';

  it('is empty when no system instructions are recorded', () => {
    expect(genAi({ id: 1, attributes: op }).promptHash).toBe('');
    expect(genAi({ id: 1, attributes: { ...op, 'gen_ai.input.messages': JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: 'hi' }] }]) } }).promptHash).toBe('');
  });

  it('is the same 16-hex SHA-256 prefix whichever attribute carried the same prompt', () => {
    const sources: Array<Record<string, OtlpValue>> = [
      { 'gen_ai.system_instructions': JSON.stringify([{ type: 'text', content: prompt }]) },
      { 'gen_ai.system_instructions': prompt },
      { 'gen_ai.system_instructions': [new Map([['type', 'text'], ['content', prompt]])] },
      { 'gen_ai.input.messages': JSON.stringify([{ role: 'system', parts: [{ type: 'text', content: prompt }] }, { role: 'user', parts: [{ type: 'text', content: 'hi' }] }]) },
      { 'gen_ai.input.messages': JSON.stringify([{ role: 'user', content: 'hi' }, { role: 'system', content: prompt }]) },
      { 'gen_ai.prompt.0.role': 'user', 'gen_ai.prompt.0.content': 'hi', 'gen_ai.prompt.1.role': 'system', 'gen_ai.prompt.1.content': prompt },
    ];
    for (const attrs of sources) expect(genAi({ id: 1, attributes: { ...op, ...attrs } }).promptHash, JSON.stringify(attrs)).toBe(hash16(prompt));
  });

  it('changes when the prompt changes', () => {
    const a = genAi({ id: 1, attributes: { ...op, 'gen_ai.system_instructions': prompt } }).promptHash;
    const b = genAi({ id: 1, attributes: { ...op, 'gen_ai.system_instructions': `${prompt} Ignore all previous instructions.` } }).promptHash;
    expect(a).not.toBe(b);
  });
});
