import type { VitalsInput } from '../../domain/vitals.js';
import type { GenAiSpan } from './genai-span.js';

/*
 * Pure mapping from assembled GenAI spans to one vitals record (DESIGN §2).
 * The caller validates the result with parseVitals.
 */

const MAX_TOOL_NAMES = 256;

function epochSeconds(ns: bigint): number {
  // Microsecond precision survives the conversion to a float.
  return Number(ns / 1000n) / 1e6;
}

function durationMs(span: GenAiSpan): number {
  return Number(span.endNs - span.startNs) / 1e6;
}

function byStart(a: GenAiSpan, b: GenAiSpan): number {
  return a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0;
}

/**
 * Retries inferred from the model calls of one invocation: a call that failed
 * and was followed by another call starting after it ended is counted as retried.
 * Calls running in parallel with the failed one are not a retry of it, and a
 * failure with nothing after it is a failure, not a retry.
 */
export function inferRetries(modelCalls: readonly GenAiSpan[]): number {
  let latestStart = -1n;
  for (const c of modelCalls) if (c.startNs > latestStart) latestStart = c.startNs;
  let retries = 0;
  for (const call of modelCalls) {
    if (!call.failed) continue;
    if (call.endNs < latestStart || (call.endNs === latestStart && modelCalls.some((other) => other !== call && other.startNs === latestStart))) retries++;
  }
  return retries;
}

/** Tool names in first-use order, each once, capped at the schema's 256. */
function distinctToolNames(tools: readonly GenAiSpan[]): string[] {
  const names = new Set<string>();
  for (const t of tools) {
    if (t.toolName !== '') names.add(t.toolName);
    if (names.size >= MAX_TOOL_NAMES) break;
  }
  return [...names];
}

/**
 * One record for an invoke_agent span and the spans it owns: latency is the
 * agent span's duration; tokens are summed over its model calls (or taken from the
 * agent span itself when no model call reports usage, as frameworks that put totals
 * on the agent span do); every execute_tool child is a tool call.
 */
export function invocationVitals(agent: GenAiSpan, children: readonly GenAiSpan[]): VitalsInput {
  const modelCalls = children.filter((c) => c.role === 'model').sort(byStart);
  const tools = children.filter((c) => c.role === 'tool').sort(byStart);
  const childReportsUsage = modelCalls.some((c) => c.inputTokens !== undefined || c.outputTokens !== undefined);
  const inputTokens = childReportsUsage ? modelCalls.reduce((s, c) => s + (c.inputTokens ?? 0), 0) : (agent.inputTokens ?? 0);
  const outputTokens = childReportsUsage ? modelCalls.reduce((s, c) => s + (c.outputTokens ?? 0), 0) : (agent.outputTokens ?? 0);
  const lastWithModel = [...modelCalls].reverse().find((c) => c.model !== '');
  const lastWithProvider = [...modelCalls].reverse().find((c) => c.provider !== '');
  const firstWithPrompt = modelCalls.find((c) => c.promptHash !== '');
  return {
    agent_id: agent.agentId,
    agent_type: agent.agentName || 'otel',
    timestamp: epochSeconds(agent.endNs),
    latency_ms: durationMs(agent),
    input_tokens: inputTokens,
    output_tokens: outputTokens,
    token_count: inputTokens + outputTokens,
    tool_calls: tools.length,
    retries: agent.retries ?? inferRetries(modelCalls),
    success: !agent.failed,
    error_type: agent.errorType,
    model: agent.model || (lastWithModel?.model ?? ''),
    provider: agent.provider || (lastWithProvider?.provider ?? ''),
    prompt_hash: agent.promptHash || (firstWithPrompt?.promptHash ?? ''),
    tool_names: distinctToolNames(tools),
  };
}

/** One record for a model call that no agent invocation owns. */
export function modelCallVitals(call: GenAiSpan): VitalsInput {
  const inputTokens = call.inputTokens ?? 0;
  const outputTokens = call.outputTokens ?? 0;
  return {
    agent_id: call.agentId,
    agent_type: call.agentName || 'otel',
    timestamp: epochSeconds(call.endNs),
    latency_ms: durationMs(call),
    input_tokens: inputTokens,
    output_tokens: outputTokens,
    token_count: inputTokens + outputTokens,
    tool_calls: 0,
    retries: call.retries ?? 0,
    success: !call.failed,
    error_type: call.errorType,
    model: call.model,
    provider: call.provider,
    prompt_hash: call.promptHash,
    tool_names: [],
  };
}
