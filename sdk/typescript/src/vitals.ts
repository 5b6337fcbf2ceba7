/** Agent ids the control plane accepts (DESIGN §2): 1–128 of [A-Za-z0-9._:@/-]. */
export const AGENT_ID_PATTERN = /^[A-Za-z0-9._:@/-]{1,128}$/;

/** One task's vitals as the agent reports them; every field is optional. */
export interface VitalsReport {
  /** Wall time of the task, ms. */
  latency_ms?: number;
  input_tokens?: number;
  output_tokens?: number;
  /** Defaults to input_tokens + output_tokens on the server. */
  token_count?: number;
  /** USD. */
  cost?: number;
  tool_calls?: number;
  retries?: number;
  /** Defaults to true when error_type is empty. */
  success?: boolean;
  /** Defaults to the reporter's model. */
  model?: string;
  provider?: string;
  /** Error class; '' when none. */
  error_type?: string;
  /** Hash of the system prompt; a change without a deployment is a symptom. */
  prompt_hash?: string;
  tool_names?: string[];
  mcp_servers?: string[];
  /** Epoch seconds; defaults to the moment report() is called. */
  timestamp?: number;
}

/** A record as sent on the wire. */
export type VitalsRecord = VitalsReport & { agent_id: string; agent_type: string; timestamp: number };

const COUNTS = ['input_tokens', 'output_tokens', 'token_count', 'tool_calls', 'retries'] as const;
const AMOUNTS = ['latency_ms', 'cost', 'timestamp'] as const;
const LABELS = { model: 128, provider: 64, error_type: 128, prompt_hash: 128 } as const;
const LISTS = { tool_names: 256, mcp_servers: 64 } as const;
const MAX = 1e12;

/**
 * Checks a report against the control plane's rules before it is queued:
 * one bad record would make the server refuse the whole batch it travels in.
 * Returns the wire record, or the reason it is invalid (naming the field).
 */
export function toVitalsRecord(report: VitalsReport, defaults: { agent_id: string; agent_type: string; model: string }, nowSeconds: number): { record: VitalsRecord } | { error: string } {
  if (typeof report !== 'object' || report === null) return { error: 'report() takes an object of vitals' };
  for (const f of COUNTS) {
    const v = report[f];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX) return { error: `field '${f}' must be a whole number between 0 and 1e12 (got ${String(v)})` };
  }
  for (const f of AMOUNTS) {
    const v = report[f];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > (f === 'timestamp' ? 1e11 : MAX)) return { error: `field '${f}' must be a finite number ≥ 0 (got ${String(v)})` };
  }
  for (const [f, max] of Object.entries(LABELS) as Array<[keyof typeof LABELS, number]>) {
    const v = report[f];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.length > max) return { error: `field '${f}' must be a string of at most ${max} characters` };
  }
  for (const [f, max] of Object.entries(LISTS) as Array<[keyof typeof LISTS, number]>) {
    const v = report[f];
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.length > max || v.some((s) => typeof s !== 'string' || s.length > 128)) return { error: `field '${f}' must be a list of at most ${max} strings of at most 128 characters` };
  }
  if (report.success !== undefined && typeof report.success !== 'boolean') return { error: `field 'success' must be true or false` };
  const record: VitalsRecord = { ...pick(report), agent_id: defaults.agent_id, agent_type: defaults.agent_type, timestamp: report.timestamp ?? nowSeconds };
  if (record.model === undefined && defaults.model !== '') record.model = defaults.model;
  return { record };
}

/** Only the known fields travel: a caller's extra properties (or a whole response object) must not. */
function pick(r: VitalsReport): VitalsReport {
  const out: Record<string, unknown> = {};
  for (const f of [...COUNTS, ...AMOUNTS, ...Object.keys(LABELS), ...Object.keys(LISTS), 'success']) {
    const v = (r as Record<string, unknown>)[f];
    if (v !== undefined) out[f] = Array.isArray(v) ? [...v] : v;
  }
  return out as VitalsReport;
}
