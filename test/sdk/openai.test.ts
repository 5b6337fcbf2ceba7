import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ImmuneReporter, instrumentOpenAI, systemPromptHash, uninstrumentOpenAI, type VitalsReport } from '../../sdk/typescript/src/index.js';
import { promptHashOf } from '../../src/integrations/otlp/genai-span.js';
import { DEFAULT_COMPLETION, startFakeOpenAI, type FakeCompletion, type FakeOpenAI } from '../support/fake-openai.js';
import { startScriptedServer, until } from '../support/scripted-http.js';

/*
 * The real `openai` package, pointed at a local OpenAI-compatible server
 * (test/support/fake-openai.ts), instrumented with instrumentOpenAI. Reports
 * go to an in-memory sink (the helper's output), and once through a real
 * ImmuneReporter to a loopback control-plane stand-in.
 */

const SYSTEM = 'You are a careful research assistant.';
const sha16 = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

let fake: FakeOpenAI;
let reports: VitalsReport[];
const sink = { report: (v: VitalsReport) => reports.push(v) };

const newClient = (baseURL = fake.baseURL) => new OpenAI({ apiKey: 'sk-test', baseURL, maxRetries: 0 });
const messages = [
  { role: 'system' as const, content: SYSTEM },
  { role: 'user' as const, content: 'Find three papers on EWMA baselines.' },
];

beforeAll(async () => {
  fake = await startFakeOpenAI();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  reports = [];
  fake.behave(() => DEFAULT_COMPLETION);
});

const answer = (c: Partial<FakeCompletion>) => fake.behave(() => ({ ...DEFAULT_COMPLETION, ...c }));

describe('instrumentOpenAI: completions', () => {
  it('reports latency, usage, model, tool calls, prompt hash and cost of each completion', async () => {
    answer({ prompt_tokens: 812, completion_tokens: 233, tool_calls: ['search', 'fetch', 'search'] });
    const client = instrumentOpenAI(newClient(), sink, { prices: { 'gpt-4o': { input: 2.5, output: 10 }, 'gpt-4o-mini': { input: 0.15, output: 0.6 } } });
    const res = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, tools: [{ type: 'function', function: { name: 'search', parameters: {} } }] });

    expect(res.choices[0].message.tool_calls).toHaveLength(3);
    expect(reports).toHaveLength(1);
    const v = reports[0];
    expect(v).toMatchObject({
      model: 'gpt-4o-mini-2024-07-18',
      provider: 'openai',
      input_tokens: 812,
      output_tokens: 233,
      tool_calls: 3,
      tool_names: ['search', 'fetch'],
      success: true,
      error_type: '',
      prompt_hash: sha16(SYSTEM),
    });
    // The longest matching price name wins: gpt-4o-mini, not gpt-4o.
    expect(v.cost).toBeCloseTo((812 * 0.15 + 233 * 0.6) / 1e6, 12);
    expect(v.latency_ms).toBeGreaterThan(0);
    expect(v.latency_ms).toBeLessThan(5000);
  });

  it('leaves arguments, the response and the APIPromise untouched', async () => {
    answer({ tool_calls: ['lookup'] });
    const plain = newClient();
    const instrumented = instrumentOpenAI(newClient(), sink);
    const params = { model: 'gpt-4o-mini', messages, temperature: 0.2, max_tokens: 64 };
    const frozen = JSON.stringify(params);

    const expected = await plain.chat.completions.create(params);
    const promise = instrumented.chat.completions.create(params);
    const { data, response } = await promise.withResponse();
    expect(response.status).toBe(200);
    expect(JSON.stringify(params)).toBe(frozen);
    expect(fake.requests.at(-1)!.body).toEqual(fake.requests.at(-2)!.body);
    // Same shape and content as without instrumentation (completion ids differ per request).
    expect({ ...data, id: 'x' }).toEqual({ ...expected, id: 'x' });
    expect(await promise).toBe(data);
    expect(reports).toHaveLength(1);
  });

  it('reports the capped completion when the request limits max_tokens', async () => {
    answer({ completion_tokens: 5000 });
    const client = instrumentOpenAI(newClient(), sink);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 300 });
    expect(reports[0].output_tokens).toBe(300);
  });

  it('costs 0 without a price for the model, and hashes no prompt without a system message', async () => {
    const client = instrumentOpenAI(newClient(), sink, { prices: { 'claude-': { input: 3, output: 15 } } });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(reports[0]).toMatchObject({ cost: 0, prompt_hash: '' });
  });

  it('instrumenting twice reports once; uninstrumentOpenAI stops reporting', async () => {
    const client = newClient();
    instrumentOpenAI(client, sink);
    instrumentOpenAI(client, sink);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(reports).toHaveLength(1);
    uninstrumentOpenAI(client);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(reports).toHaveLength(1);
  });

  it('refuses something that is not an OpenAI client', () => {
    expect(() => instrumentOpenAI({} as never, sink)).toThrow(/client.chat.completions.create is missing/);
  });
});

describe('instrumentOpenAI: failures', () => {
  it.each([
    [500, 'InternalServerError', OpenAI.InternalServerError],
    [429, 'RateLimitError', OpenAI.RateLimitError],
  ])('reports HTTP %i as %s and re-throws the original error', async (status, type, cls) => {
    answer({ fail: { status } });
    const client = instrumentOpenAI(newClient(), sink);
    const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(cls);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ success: false, error_type: type, model: 'gpt-4o-mini', input_tokens: 0, output_tokens: 0, prompt_hash: sha16(SYSTEM) });
  });

  it('reports an unreachable endpoint as APIConnectionError', async () => {
    const gone = await startScriptedServer(() => ({}));
    await gone.close();
    const client = instrumentOpenAI(newClient(`${gone.url}/v1`), sink);
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages })).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
    expect(reports[0]).toMatchObject({ success: false, error_type: 'APIConnectionError' });
  });

  it('counts the failed attempt once even when the client retries internally', async () => {
    let calls = 0;
    fake.behave(() => (++calls === 1 ? { ...DEFAULT_COMPLETION, fail: { status: 500, retry_after: 0 } } : DEFAULT_COMPLETION));
    const client = instrumentOpenAI(new OpenAI({ apiKey: 'sk-test', baseURL: fake.baseURL, maxRetries: 1 }), sink);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(calls).toBe(2);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ success: true, input_tokens: 120 });
  });
});

describe('instrumentOpenAI: streams', () => {
  it('reports a stream when it ends, with usage from the final chunk and each tool call once', async () => {
    answer({ prompt_tokens: 90, completion_tokens: 30, tool_calls: ['search', 'fetch'] });
    const client = instrumentOpenAI(newClient(), sink);
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } });
    expect(reports).toHaveLength(0); // nothing is known until the caller has read it
    let chunks = 0;
    for await (const _chunk of stream) chunks++;
    expect(chunks).toBeGreaterThan(4);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ success: true, input_tokens: 90, output_tokens: 30, tool_calls: 2, tool_names: ['search', 'fetch'], model: 'gpt-4o-mini-2024-07-18', prompt_hash: sha16(SYSTEM) });
  });

  it('reports zero tokens when the stream carries no usage, and reports a stream the caller abandons', async () => {
    const client = instrumentOpenAI(newClient(), sink);
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    for await (const _chunk of stream) break;
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ success: true, input_tokens: 0, output_tokens: 0 });
  });

  it('observes a teed stream once', async () => {
    answer({ tool_calls: ['a'] });
    const client = instrumentOpenAI(newClient(), sink);
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } });
    const [left, right] = stream.tee();
    for await (const _ of left);
    for await (const _ of right);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ tool_calls: 1, input_tokens: 120 });
  });
});

describe('systemPromptHash', () => {
  it('hashes a single system prompt exactly like the OTLP receiver hashes gen_ai.system_instructions', () => {
    expect(systemPromptHash(messages)).toBe(promptHashOf(new Map([['gen_ai.system_instructions', SYSTEM]])));
  });

  it('reads text parts, developer messages, and joins several', () => {
    expect(systemPromptHash([{ role: 'system', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }])).toBe(sha16('a\nb'));
    expect(systemPromptHash([{ role: 'developer', content: 'x' }, { role: 'user', content: 'u' }, { role: 'system', content: 'y' }])).toBe(sha16('x\ny'));
    expect(systemPromptHash(undefined)).toBe('');
  });
});

describe('instrumentOpenAI with a real ImmuneReporter', () => {
  it('delivers each completion to the control plane as a vitals record of the agent', async () => {
    const cp = await startScriptedServer((req) => ({ body: { ok: true, accepted: 1, agents: { 'oa-agent': { status: 'learning', directive: null } } } }));
    const reporter = new ImmuneReporter({ agent_id: 'oa-agent', base_url: cp.url, api_key: 'k', agent_type: 'Research', flush_interval: 0.05, flush_on_exit: false });
    try {
      const client = instrumentOpenAI(newClient(), reporter);
      answer({ tool_calls: ['search'] });
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
      await reporter.flush(5);
      const recs = cp.requests.filter((q) => q.path === '/api/v1/ingest').flatMap((q) => q.body as Array<Record<string, unknown>>);
      expect(recs).toHaveLength(1);
      expect(recs[0]).toMatchObject({ agent_id: 'oa-agent', agent_type: 'Research', input_tokens: 120, output_tokens: 40, tool_calls: 1, success: true, prompt_hash: sha16(SYSTEM) });
      await until(() => reporter.status === 'learning', 'the status from the answer');
    } finally {
      await reporter.close(1);
      await cp.close();
    }
  });
});
