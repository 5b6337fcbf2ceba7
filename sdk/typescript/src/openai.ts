import { systemPromptHash } from './prompt-hash.js';
import type { VitalsReport } from './vitals.js';

/** The part of an official `openai` client (v4+) this helper touches; typed structurally so the SDK has no dependency on it. */
export interface OpenAILike {
  chat: { completions: { create: (...args: any[]) => any } };
}

/** Anything that takes reports: an ImmuneReporter. */
export interface VitalsSink {
  report(vitals: VitalsReport): unknown;
}

/** USD per one million tokens. */
export interface ModelPrice {
  input: number;
  output: number;
}

export interface InstrumentOpenAIOptions {
  /** Prices by model name; the longest name that prefixes the response's model wins ('gpt-4o' prices 'gpt-4o-2024-08-06'). Without a match cost is 0. */
  prices?: Record<string, ModelPrice>;
  /** Reported as `provider` (fleet incidents group agents by it). Default 'openai'. */
  provider?: string;
}

const ORIGINAL = Symbol.for('agent-immune.openai.original-create');

interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
}
interface ToolCall {
  index?: number;
  function?: { name?: string };
}
interface Completion {
  model?: string;
  usage?: Usage | null;
  choices?: Array<{ index?: number; message?: { tool_calls?: ToolCall[] | null }; delta?: { tool_calls?: ToolCall[] | null } }>;
}

/**
 * Reports every chat completion made through `client` as one vitals record:
 * latency, usage tokens, model, tool calls requested in the response, the
 * error class on failure, cost (with `prices`), and the system prompt's hash.
 * `client.chat.completions.create` is wrapped in place; arguments, return
 * value (the same APIPromise, so `.withResponse()` still works) and thrown
 * errors are untouched. Streams are reported when the caller finishes reading
 * them; tokens then come from the final usage chunk, which OpenAI sends only
 * with `stream_options: {include_usage: true}` (otherwise they are 0).
 * Instrumenting twice is a no-op. Returns the client.
 */
export function instrumentOpenAI<C extends OpenAILike>(client: C, reporter: VitalsSink, options: InstrumentOpenAIOptions = {}): C {
  const completions = client?.chat?.completions as (OpenAILike['chat']['completions'] & { [ORIGINAL]?: unknown }) | undefined;
  if (!completions || typeof completions.create !== 'function') throw new TypeError('instrumentOpenAI expects an OpenAI client (client.chat.completions.create is missing)');
  if (completions[ORIGINAL]) return client;
  const original = completions.create;
  const provider = options.provider ?? 'openai';
  const prices = Object.entries(options.prices ?? {}).sort((a, b) => b[0].length - a[0].length);

  const send = (r: VitalsReport) => {
    try {
      reporter.report(r);
    } catch {
      // Reporting must never change what the caller sees.
    }
  };
  const costOf = (model: string, input: number, output: number): number => {
    const hit = prices.find(([name]) => model === name || model.startsWith(name));
    return hit ? (input * hit[1].input + output * hit[1].output) / 1e6 : 0;
  };

  function create(this: unknown, ...args: unknown[]): unknown {
    const params = (typeof args[0] === 'object' && args[0] !== null ? args[0] : {}) as { model?: unknown; messages?: unknown };
    const requested = typeof params.model === 'string' ? params.model : '';
    const prompt_hash = systemPromptHash(params.messages);
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 1000) / 1000;

    const failed = (err: unknown) => send({ latency_ms: elapsed(), model: requested, provider, success: false, error_type: errorTypeOf(err), prompt_hash, input_tokens: 0, output_tokens: 0, tool_calls: 0 });
    const completed = (c: Completion) => {
      const input = count(c.usage?.prompt_tokens);
      const output = count(c.usage?.completion_tokens);
      const calls = (c.choices ?? []).flatMap((ch) => ch.message?.tool_calls ?? []);
      const model = typeof c.model === 'string' && c.model !== '' ? c.model.slice(0, 128) : requested;
      send({ latency_ms: elapsed(), model, provider, success: true, error_type: '', prompt_hash, input_tokens: input, output_tokens: output, tool_calls: calls.length, tool_names: namesOf(calls), cost: costOf(model, input, output) });
    };

    let result: unknown;
    try {
      result = original.apply(this, args);
    } catch (err) {
      failed(err);
      throw err;
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      // Observe without replacing: the caller gets `result` itself.
      (result as PromiseLike<unknown>).then(
        (value) => (isStream(value) ? observeStream(value, completed, failed) : completed((value ?? {}) as Completion)),
        failed,
      );
    }
    return result;
  }

  Object.defineProperty(completions, 'create', { value: create, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(completions, ORIGINAL, { value: original, configurable: true, enumerable: false });
  return client;
}

/** Undoes instrumentOpenAI. */
export function uninstrumentOpenAI(client: OpenAILike): void {
  const completions = client.chat.completions as OpenAILike['chat']['completions'] & { [ORIGINAL]?: OpenAILike['chat']['completions']['create'] };
  const original = completions[ORIGINAL];
  if (!original) return;
  delete (completions as { [ORIGINAL]?: unknown })[ORIGINAL];
  delete (completions as { create?: unknown }).create;
  // The prototype's create shows through again; restore an own property only if there was one.
  if (completions.create !== original) Object.defineProperty(completions, 'create', { value: original, writable: true, configurable: true });
}

function isStream(v: unknown): v is AsyncIterable<Completion> {
  return typeof v === 'object' && v !== null && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' && !('choices' in v);
}

/**
 * Reports a stream when the caller finishes with it (end, break, or error).
 * The openai Stream builds every consumer (for-await, tee, toReadableStream)
 * from its `iterator` factory, so wrapping that one function observes them all.
 */
function observeStream(stream: AsyncIterable<Completion>, completed: (c: Completion) => void, failed: (err: unknown) => void): void {
  const acc: Completion & { usage: Usage } = { model: '', usage: {}, choices: [] };
  const calls = new Map<string, ToolCall>();
  let done = false;
  const finish = (err: unknown) => {
    if (done) return;
    done = true;
    if (err !== undefined) failed(err);
    else completed({ model: acc.model, usage: acc.usage, choices: [{ message: { tool_calls: [...calls.values()] } }] });
  };
  const observe = (chunk: Completion) => {
    if (typeof chunk?.model === 'string' && chunk.model !== '') acc.model = chunk.model;
    if (chunk?.usage) acc.usage = chunk.usage;
    for (const ch of chunk?.choices ?? []) {
      for (const tc of ch.delta?.tool_calls ?? []) {
        // Deltas of one call share its index; the name arrives in the first.
        const key = `${ch.index ?? 0}:${tc.index ?? calls.size}`;
        const seen = calls.get(key);
        if (!seen) calls.set(key, { function: { name: tc.function?.name } });
        else if (!seen.function?.name && tc.function?.name) seen.function = { name: tc.function.name };
      }
    }
  };
  const wrap = (it: AsyncIterator<Completion>): AsyncIterator<Completion> & AsyncIterable<Completion> => ({
    async next(...a: [] | [undefined]) {
      try {
        const r = await it.next(...a);
        if (r.done) finish(undefined);
        else observe(r.value);
        return r;
      } catch (err) {
        finish(err);
        throw err;
      }
    },
    async return(value?: unknown) {
      finish(undefined);
      return it.return ? it.return(value) : { done: true, value: value as Completion };
    },
    async throw(e?: unknown) {
      finish(e);
      if (it.throw) return it.throw(e);
      throw e;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  });
  const s = stream as unknown as { iterator?: () => AsyncIterator<Completion> };
  if (typeof s.iterator === 'function') {
    const factory = s.iterator.bind(stream);
    s.iterator = () => wrap(factory());
  } else {
    const factory = stream[Symbol.asyncIterator].bind(stream);
    Object.defineProperty(stream, Symbol.asyncIterator, { value: () => wrap(factory()), configurable: true, writable: true });
  }
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : 0;
}

function namesOf(calls: ToolCall[]): string[] {
  const names = new Set<string>();
  for (const c of calls) if (typeof c.function?.name === 'string' && c.function.name !== '') names.add(c.function.name.slice(0, 128));
  return [...names].slice(0, 256);
}

/**
 * The error's class as the error type ("RateLimitError", "APIConnectionTimeoutError"),
 * so detection sees one category per kind of failure; a generic API error is
 * named by its HTTP status instead ("http_503").
 */
export function errorTypeOf(err: unknown): string {
  if (typeof err !== 'object' || err === null) return 'Error';
  const name = (err as { constructor?: { name?: unknown } }).constructor?.name;
  const status = (err as { status?: unknown }).status;
  const generic = typeof name !== 'string' || name === '' || name === 'Error' || name === 'Object' || name === 'APIError' || name === 'OpenAIError';
  if (generic && typeof status === 'number') return `http_${status}`;
  return (typeof name === 'string' && name !== '' && name !== 'Object' ? name : 'Error').slice(0, 128);
}
