/** Decoded spans for unit tests of the mapping and the assembler, without going through a decoder. */
import { classifySpan, type GenAiSpan } from '../../../src/integrations/otlp/genai-span.js';
import type { OtlpSpan, OtlpValue } from '../../../src/integrations/otlp/otlp-types.js';

export const TRACE_A = '0af7651916cd43dd8448eb211c80319c';
export const TRACE_B = '1bf7651916cd43dd8448eb211c80319c';
/** 2023-11-14T22:13:20Z in nanoseconds. */
export const T0_NS = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;

export interface Spec {
  trace?: string;
  id: string | number;
  parent?: string | number;
  /** Offsets from T0 in ms. */
  start?: number;
  end?: number;
  attributes?: Record<string, OtlpValue>;
  status?: { code: number; message?: string };
  service?: string;
}

/** A span id from a small number, so tests can say parent: 1. */
export const sid = (n: string | number): string => (typeof n === 'number' ? n.toString(16).padStart(16, '0') : n);

export function otlpSpan(s: Spec): OtlpSpan {
  return {
    traceId: s.trace ?? TRACE_A,
    spanId: sid(s.id),
    parentSpanId: s.parent === undefined ? '' : sid(s.parent),
    name: 'span',
    kind: 1,
    startTimeUnixNano: T0_NS + BigInt(s.start ?? 0) * MS,
    endTimeUnixNano: T0_NS + BigInt(s.end ?? 100) * MS,
    attributes: new Map(Object.entries(s.attributes ?? {})),
    status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
    resource: { attributes: new Map([['service.name', s.service ?? 'svc']]) },
  };
}

export function genAi(s: Spec): GenAiSpan {
  const c = classifySpan(otlpSpan(s));
  if (!c.ok) throw new Error(`fixture is not a GenAI span: ${c.reason}`);
  return c.span;
}

export const agent = (id: number, more: Partial<Spec> = {}): Spec => ({ id, start: 0, end: 1000, ...more, attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.id': 'a1', ...more.attributes } });
export const chat = (id: number, parent: number | undefined, inTok: number, outTok: number, more: Partial<Spec> = {}): Spec => ({
  id, parent, start: 10, end: 90, ...more,
  attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': inTok, 'gen_ai.usage.output_tokens': outTok, ...more.attributes },
});
export const tool = (id: number, parent: number | undefined, name: string, more: Partial<Spec> = {}): Spec => ({
  id, parent, start: 100, end: 200, ...more, attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': name, ...more.attributes },
});
