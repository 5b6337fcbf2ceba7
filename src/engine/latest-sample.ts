import type { Vitals } from '../domain/vitals.js';

/**
 * A copy of `v` to keep as an agent's latest sample, or `prev` (the one kept so far) overwritten with
 * `v`'s values. Strings and lists equal to the ones already kept stay the same objects, so a parsed
 * request leaves nothing of itself in the kept record and dies young: kept for the ~1 s until the
 * agent's next report, every sample and its strings were promoted to the old generation at ingest rates.
 */
export function keepLatest(prev: Vitals | null, v: Vitals): Vitals {
  if (prev === null) return { ...v };
  prev.agent_id = same(prev.agent_id, v.agent_id);
  prev.agent_type = same(prev.agent_type, v.agent_type);
  prev.timestamp = v.timestamp;
  prev.latency_ms = v.latency_ms;
  prev.input_tokens = v.input_tokens;
  prev.output_tokens = v.output_tokens;
  prev.token_count = v.token_count;
  prev.cost = v.cost;
  prev.tool_calls = v.tool_calls;
  prev.retries = v.retries;
  prev.success = v.success;
  prev.model = same(prev.model, v.model);
  prev.provider = same(prev.provider, v.provider);
  prev.error_type = same(prev.error_type, v.error_type);
  prev.prompt_hash = same(prev.prompt_hash, v.prompt_hash);
  prev.mcp_servers = sameList(prev.mcp_servers, v.mcp_servers);
  prev.tool_names = sameList(prev.tool_names, v.tool_names);
  return prev;
}

const same = (kept: string, next: string): string => (kept === next ? kept : next);

function sameList(kept: string[], next: string[]): string[] {
  if (kept === next) return kept;
  if (kept.length !== next.length) return next;
  for (let i = 0; i < kept.length; i++) if (kept[i] !== next[i]) return next;
  return kept;
}
