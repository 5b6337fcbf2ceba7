import Type, { type Static, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { ImmuneError } from './errors.js';

const Count = (description: string) => Type.Integer({ minimum: 0, maximum: 1e12, description });
const Amount = (description: string) => Type.Number({ minimum: 0, maximum: 1e12, description });
const Label = (max: number, description: string) => Type.String({ maxLength: max, description });

export const AGENT_ID_PATTERN = '^[A-Za-z0-9._:@/-]{1,128}$';

/** One vitals record as it arrives on the wire (DESIGN §2). Unknown fields are ignored. */
export const VitalsInputSchema = Type.Object(
  {
    agent_id: Type.String({ minLength: 1, maxLength: 128, pattern: AGENT_ID_PATTERN, description: 'Stable id of the reporting agent' }),
    agent_type: Type.Optional(Label(64, 'Kind of agent, e.g. Research')),
    timestamp: Type.Optional(Type.Number({ minimum: 0, description: 'Epoch seconds (float); defaults to the time of arrival' })),
    latency_ms: Type.Optional(Amount('Wall time of the task in milliseconds')),
    input_tokens: Type.Optional(Count('Prompt tokens')),
    output_tokens: Type.Optional(Count('Completion tokens')),
    token_count: Type.Optional(Count('Total tokens; defaults to input_tokens + output_tokens')),
    cost: Type.Optional(Amount('Cost of the task in USD')),
    tool_calls: Type.Optional(Count('Number of tool calls made during the task')),
    retries: Type.Optional(Count('Number of retries during the task')),
    success: Type.Optional(Type.Boolean({ description: 'Whether the task succeeded' })),
    model: Type.Optional(Label(128, 'Model name')),
    provider: Type.Optional(Label(64, 'Model provider, e.g. openai; used to group fleet incidents')),
    error_type: Type.Optional(Label(128, 'Error class, "" when none')),
    prompt_hash: Type.Optional(Label(128, 'Hash of the system prompt')),
    mcp_servers: Type.Optional(Type.Array(Label(128, 'MCP server'), { maxItems: 64 })),
    tool_names: Type.Optional(Type.Array(Label(128, 'Tool name'), { maxItems: 256 })),
  },
  { additionalProperties: true, $id: 'VitalsInput' },
);
export type VitalsInput = Static<typeof VitalsInputSchema>;

/** A validated record with every default applied: what the engine and the stores see. */
export interface Vitals {
  agent_id: string;
  agent_type: string;
  timestamp: number;
  latency_ms: number;
  input_tokens: number;
  output_tokens: number;
  token_count: number;
  cost: number;
  tool_calls: number;
  retries: number;
  success: boolean;
  model: string;
  provider: string;
  error_type: string;
  prompt_hash: string;
  mcp_servers: string[];
  tool_names: string[];
}

const checkVitals = Compile(VitalsInputSchema);

/** Turns the first schema error into "field: reason" so a reporter knows what to fix. */
export function describeSchemaError(check: { Errors(v: unknown): Iterable<{ instancePath: string; message: string; keyword: string; params: unknown }> }, value: unknown): { field: string; reason: string } {
  for (const e of check.Errors(value)) {
    if (e.keyword === 'boolean') continue; // typebox reports a companion error for the same problem
    let field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    if (e.keyword === 'required') {
      const params = e.params as { requiredProperties?: string[] };
      field = [field, params.requiredProperties?.[0] ?? ''].filter(Boolean).join('.');
      return { field, reason: 'is required' };
    }
    if (field === '' && e.keyword === 'type') return { field: '(record)', reason: 'must be a JSON object' };
    return { field: field || '(record)', reason: e.message };
  }
  return { field: '(record)', reason: 'is invalid' };
}

function reject(input: unknown, index: number | undefined): never {
  const { field, reason } = describeSchemaError(checkVitals, input);
  let detail = reason;
  if (typeof input === 'object' && input !== null && field in input) {
    const v = (input as Record<string, unknown>)[field];
    if (typeof v === 'number' && !Number.isFinite(v)) detail = 'must be a finite number';
  }
  const where = index === undefined ? '' : `record ${index}: `;
  throw new ImmuneError('IMM_ERR_VALIDATION', `${where}field '${field}' ${detail}`, index === undefined ? { field } : { field, index });
}

/**
 * Validates one wire record and applies defaults. Throws IMM_ERR_VALIDATION naming the field.
 * JSON cannot carry NaN or Infinity, but in-process callers can; both are rejected.
 */
export function parseVitals(input: unknown, nowSeconds: number, index?: number): Vitals {
  if (!checkVitals.Check(input)) reject(input, index);
  const v = input as VitalsInput;
  const inTok = v.input_tokens ?? 0;
  const outTok = v.output_tokens ?? 0;
  return {
    agent_id: v.agent_id,
    agent_type: v.agent_type ?? 'external',
    timestamp: v.timestamp ?? nowSeconds,
    latency_ms: v.latency_ms ?? 0,
    input_tokens: inTok,
    output_tokens: outTok,
    token_count: v.token_count ?? inTok + outTok,
    cost: v.cost ?? 0,
    tool_calls: v.tool_calls ?? 0,
    retries: v.retries ?? 0,
    success: v.success ?? (v.error_type === undefined || v.error_type === ''),
    model: v.model ?? '',
    provider: v.provider ?? '',
    error_type: v.error_type ?? '',
    prompt_hash: v.prompt_hash ?? '',
    mcp_servers: v.mcp_servers ?? [],
    tool_names: v.tool_names ?? [],
  };
}

export interface TimestampBounds {
  /** Oldest accepted sample, seconds before now. */
  maxAgeSeconds: number;
  /** Furthest accepted sample into the future (clock skew), seconds after now. */
  maxFutureSeconds: number;
}

/** Live ingest refuses samples outside [now - maxAge, now + maxFuture]; replay does not call this. */
export function checkTimestamp(v: Vitals, nowSeconds: number, bounds: TimestampBounds, index?: number): void {
  const where = index === undefined ? '' : `record ${index}: `;
  const extra = index === undefined ? { field: 'timestamp' } : { field: 'timestamp', index };
  if (v.timestamp < nowSeconds - bounds.maxAgeSeconds) {
    throw new ImmuneError('IMM_ERR_TIMESTAMP_RANGE', `${where}field 'timestamp' is more than ${bounds.maxAgeSeconds} s in the past`, extra);
  }
  if (v.timestamp > nowSeconds + bounds.maxFutureSeconds) {
    throw new ImmuneError('IMM_ERR_TIMESTAMP_RANGE', `${where}field 'timestamp' is more than ${bounds.maxFutureSeconds} s in the future`, extra);
  }
}

export function schemaOf(s: TSchema): object {
  return JSON.parse(JSON.stringify(s)) as object;
}
