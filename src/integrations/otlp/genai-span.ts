import { createHash } from 'node:crypto';
import { STATUS_ERROR, type OtlpKeyValues, type OtlpSpan, type OtlpValue } from './otlp-types.js';

/*
 * Reads one span through the OpenTelemetry GenAI semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/gen-ai/) and keeps only what a
 * vitals record needs, so the assembler holds a few hundred bytes per pending
 * span instead of the span's attributes (which may carry whole conversations).
 */

/** What a span contributes to a record: an agent invocation, a model call, or a tool call. */
export type GenAiRole = 'agent' | 'model' | 'tool';

export interface GenAiSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  role: GenAiRole;
  /** gen_ai.operation.name as sent ('' when the instrumentation sent none). */
  operation: string;
  startNs: bigint;
  endNs: bigint;
  /** gen_ai.agent.id, else gen_ai.agent.name, else resource service.name, sanitised to the agent_id pattern. */
  agentId: string;
  /** gen_ai.agent.name, '' when absent. */
  agentName: string;
  /** gen_ai.response.model, else gen_ai.request.model. */
  model: string;
  /** gen_ai.provider.name, else the legacy gen_ai.system. */
  provider: string;
  /** undefined when the span carries no usage attribute (so a parent can tell "0" from "not reported"). */
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  toolName: string;
  failed: boolean;
  /** error.type, else 'span_error' when the span status is ERROR; '' when the span succeeded. */
  errorType: string;
  /** gen_ai.retry.count or retries, when the instrumentation reports retries itself. */
  retries: number | undefined;
  /** First 16 hex chars of SHA-256 of the system instructions; '' when none are recorded. */
  promptHash: string;
}

export type SpanSkipReason = 'no_genai_attributes' | 'unsupported_operation' | 'invalid_span';

export type SpanClassification = { ok: true; span: GenAiSpan } | { ok: false; reason: SpanSkipReason; detail: string };

const AGENT_OPERATIONS = new Set(['invoke_agent']);
const TOOL_OPERATIONS = new Set(['execute_tool']);
/** Inference operations: each is one call to a model and may report token usage. */
const MODEL_OPERATIONS = new Set(['chat', 'text_completion', 'generate_content', 'embeddings']);

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** Same limits as the Vitals schema, so a long attribute is shortened instead of failing the record. */
const MAX_ID = 128;
const MAX_LABEL = 128;
const MAX_PROVIDER = 64;

export function hasGenAiAttributes(attributes: OtlpKeyValues): boolean {
  for (const key of attributes.keys()) if (key.startsWith('gen_ai.')) return true;
  return false;
}

/** Checks ids and times; returns why a span cannot be used, or '' when it can. */
export function spanDefect(span: OtlpSpan): string {
  if (!TRACE_ID.test(span.traceId) || span.traceId === ZERO_TRACE) return 'trace_id must be 16 non-zero bytes';
  if (!SPAN_ID.test(span.spanId) || span.spanId === ZERO_SPAN) return 'span_id must be 8 non-zero bytes';
  if (span.parentSpanId !== '' && !SPAN_ID.test(span.parentSpanId)) return 'parent_span_id must be empty or 8 bytes';
  if (span.startTimeUnixNano === 0n || span.endTimeUnixNano === 0n) return 'start and end time must be set';
  if (span.endTimeUnixNano < span.startTimeUnixNano) return 'end time is before start time';
  return '';
}

function str(attributes: OtlpKeyValues, key: string): string {
  const v = attributes.get(key);
  return typeof v === 'string' ? v : '';
}

/** A non-negative integer attribute; numeric strings are read too (some instrumentations stringify). Anything else counts as absent. */
function count(attributes: OtlpKeyValues, key: string): number | undefined {
  let v = attributes.get(key);
  if (typeof v === 'string' && /^\d{1,15}$/.test(v.trim())) v = Number(v.trim());
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return undefined;
  return Math.round(v);
}

function firstCount(attributes: OtlpKeyValues, ...keys: string[]): number | undefined {
  for (const k of keys) {
    const c = count(attributes, k);
    if (c !== undefined) return c;
  }
  return undefined;
}

function firstString(attributes: OtlpKeyValues, ...keys: string[]): string {
  for (const k of keys) {
    const s = str(attributes, k).trim();
    if (s !== '') return s;
  }
  return '';
}

/** Replaces characters outside the agent_id alphabet so service names like "checkout agent" stay usable. */
export function sanitizeAgentId(raw: string): string {
  return raw.trim().replace(/[^A-Za-z0-9._:@/-]/g, '_').slice(0, MAX_ID);
}

function roleOf(attributes: OtlpKeyValues, operation: string): GenAiRole | undefined {
  if (AGENT_OPERATIONS.has(operation)) return 'agent';
  if (TOOL_OPERATIONS.has(operation)) return 'tool';
  if (MODEL_OPERATIONS.has(operation)) return 'model';
  const usage = firstCount(attributes, 'gen_ai.usage.input_tokens', 'gen_ai.usage.output_tokens', 'gen_ai.usage.prompt_tokens', 'gen_ai.usage.completion_tokens') !== undefined;
  if (operation === '') {
    // Older instrumentations omit gen_ai.operation.name; infer from what the span carries.
    if (str(attributes, 'gen_ai.tool.name') !== '') return 'tool';
    if (usage || firstString(attributes, 'gen_ai.request.model', 'gen_ai.response.model') !== '') return 'model';
    return undefined;
  }
  // Unknown or non-inference operations (create_agent, retrieval, invoke_workflow…) count only when they bill tokens.
  return usage ? 'model' : undefined;
}

/** Classifies a decoded span: a GenAI span the assembler should hold, or a reason to skip it. */
export function classifySpan(span: OtlpSpan): SpanClassification {
  const a = span.attributes;
  if (!hasGenAiAttributes(a)) return { ok: false, reason: 'no_genai_attributes', detail: 'no gen_ai.* attribute' };
  const defect = spanDefect(span);
  if (defect !== '') return { ok: false, reason: 'invalid_span', detail: defect };
  const operation = str(a, 'gen_ai.operation.name').trim();
  const role = roleOf(a, operation);
  if (role === undefined) return { ok: false, reason: 'unsupported_operation', detail: `gen_ai.operation.name '${operation}' is neither an agent invocation, a model call nor a tool call` };

  const agentName = str(a, 'gen_ai.agent.name').trim();
  const rawId = firstString(a, 'gen_ai.agent.id', 'gen_ai.agent.name') || str(span.resource.attributes, 'service.name').trim();
  const agentId = sanitizeAgentId(rawId) || 'unknown_service';

  const errorAttr = str(a, 'error.type').trim();
  const statusError = span.status.code === STATUS_ERROR;
  const failed = errorAttr !== '' || statusError;
  return {
    ok: true,
    span: {
      traceId: span.traceId,
      spanId: span.spanId,
      parentSpanId: span.parentSpanId,
      role,
      operation,
      startNs: span.startTimeUnixNano,
      endNs: span.endTimeUnixNano,
      agentId,
      agentName: agentName.slice(0, 64),
      model: firstString(a, 'gen_ai.response.model', 'gen_ai.request.model').slice(0, MAX_LABEL),
      provider: firstString(a, 'gen_ai.provider.name', 'gen_ai.system').slice(0, MAX_PROVIDER),
      inputTokens: firstCount(a, 'gen_ai.usage.input_tokens', 'gen_ai.usage.prompt_tokens'),
      outputTokens: firstCount(a, 'gen_ai.usage.output_tokens', 'gen_ai.usage.completion_tokens'),
      toolName: str(a, 'gen_ai.tool.name').trim().slice(0, MAX_LABEL),
      failed,
      // The status message is free text (often with ids or numbers); as an error class it would split one failure into many.
      errorType: failed ? (errorAttr || 'span_error').slice(0, MAX_LABEL) : '',
      retries: firstCount(a, 'gen_ai.retry.count', 'retries'),
      promptHash: promptHashOf(a),
    },
  };
}

/** SHA-256 prefix (16 hex chars) of the system instructions, or '' when the span records none. */
export function promptHashOf(attributes: OtlpKeyValues): string {
  const text = systemInstructions(attributes);
  return text === undefined ? '' : createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/**
 * The system prompt as text, from (in order) gen_ai.system_instructions, the first
 * system message of gen_ai.input.messages, or the indexed gen_ai.prompt.N.role /
 * .content attributes older instrumentations emit. The same prompt gives the same
 * text whichever of these carried it, so the hash does not change when an agent
 * upgrades its instrumentation.
 */
function systemInstructions(attributes: OtlpKeyValues): string | undefined {
  const instructions = attributes.get('gen_ai.system_instructions');
  if (instructions !== undefined && instructions !== null) return textOf(parseMaybeJson(instructions));

  const messages = parseMaybeJson(attributes.get('gen_ai.input.messages') ?? null);
  if (Array.isArray(messages)) {
    for (const m of messages) {
      if (field(m, 'role') === 'system') return textOf(field(m, 'parts') ?? field(m, 'content') ?? null);
    }
  }

  for (let i = 0; i < 64; i++) {
    const role = attributes.get(`gen_ai.prompt.${i}.role`);
    if (role === undefined) break;
    if (role === 'system') return textOf(attributes.get(`gen_ai.prompt.${i}.content`) ?? null);
  }
  return undefined;
}

/** Attributes that hold JSON may arrive as a JSON string or as structured AnyValues; make both plain JS values. */
function parseMaybeJson(v: OtlpValue): unknown {
  if (typeof v === 'string') {
    const t = v.trim();
    if (t.startsWith('[') || t.startsWith('{')) {
      try {
        return JSON.parse(t) as unknown;
      } catch {
        return v;
      }
    }
    return v;
  }
  return toPlain(v);
}

function toPlain(v: OtlpValue): unknown {
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, toPlain(x)]));
  if (Array.isArray(v)) return v.map(toPlain);
  return v;
}

function field(o: unknown, key: string): unknown {
  return typeof o === 'object' && o !== null && !Array.isArray(o) ? (o as Record<string, unknown>)[key] : undefined;
}

/** Text of a message body: a string, or the text parts ({type:'text', content}) joined by newlines. */
function textOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(textOf).join('\n');
  const content = field(v, 'content');
  if (content !== undefined) return textOf(content);
  return JSON.stringify(v) ?? '';
}
