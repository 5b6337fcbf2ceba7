import type { AgentSummary, LatestVitals, Overview } from './types';

/**
 * Decoding of the compact wire forms (docs/API.md): `GET /api/v1/overview?form=compact` and the
 * `vitals` message of `GET /api/v1/stream?form=compact`. A summary travels as a positional row
 * whose field names come once per message, so the decoder follows the names it is given and
 * keeps working when the server adds a field.
 */

/** `agents` of the compact overview. */
export interface CompactAgents {
  agent_fields: string[];
  latest_fields: string[];
  rows: unknown[][];
}

/** The `vitals` stream message: one row per agent whose only change is a new task. */
export interface VitalsMessage {
  fields: string[];
  latest_fields: string[];
  rows: unknown[][];
}

/** What a `vitals` row updates in a summary. */
export interface VitalsUpdate {
  id: string;
  executions: number;
  last_seen: number;
  latest: LatestVitals | null;
}

function record(fields: readonly string[], row: readonly unknown[], latestFields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const v = row[i];
    out[f] = f === 'latest' && Array.isArray(v) ? record(latestFields, v, latestFields) : v;
  }
  return out;
}

/** The field lists this build was written against (src/control/views.ts), for the fast path below. */
export const KNOWN_AGENT_FIELDS = 'id,type,model,provider,mcp_servers,source,control_url,status,since,has_baseline,infection,diagnosis,healing,decided_by,executions,last_seen,latest';
export const KNOWN_LATEST_FIELDS = 'latency,tokens,input_tokens,output_tokens,cost,tools,retries,success,error_type,timestamp';

function latestOf(l: unknown): LatestVitals | null {
  if (!Array.isArray(l)) return null;
  return { latency: l[0], tokens: l[1], input_tokens: l[2], output_tokens: l[3], cost: l[4], tools: l[5], retries: l[6], success: l[7], error_type: l[8], timestamp: l[9] };
}

/**
 * Object literals in one fixed shape, so every summary shares one hidden class. The first paint
 * decodes 1,000 of them once, cold: 2–10 ms this way against 25–50 ms key by key (Node, same
 * rows, machine under load).
 */
function knownAgent(r: readonly unknown[]): AgentSummary {
  return {
    id: r[0],
    type: r[1],
    model: r[2],
    provider: r[3],
    mcp_servers: r[4],
    source: r[5],
    control_url: r[6],
    status: r[7],
    since: r[8],
    has_baseline: r[9],
    infection: r[10],
    diagnosis: r[11],
    healing: r[12],
    decided_by: r[13],
    executions: r[14],
    last_seen: r[15],
    latest: latestOf(r[16]),
  } as AgentSummary;
}

/** The summaries of a compact overview, in its order. */
export function expandAgents(c: CompactAgents): AgentSummary[] {
  if (c.agent_fields.join(',') === KNOWN_AGENT_FIELDS && c.latest_fields.join(',') === KNOWN_LATEST_FIELDS) return c.rows.map(knownAgent);
  return c.rows.map((r) => record(c.agent_fields, r, c.latest_fields) as unknown as AgentSummary);
}

/** The updates of a `vitals` message (one per busy agent, every second). */
export function expandVitals(m: VitalsMessage): VitalsUpdate[] {
  if (m.fields.join(',') === 'id,executions,last_seen,latest' && m.latest_fields.join(',') === KNOWN_LATEST_FIELDS) {
    return m.rows.map((r) => ({ id: r[0], executions: r[1], last_seen: r[2], latest: latestOf(r[3]) }) as VitalsUpdate);
  }
  return m.rows.map((r) => record(m.fields, r, m.latest_fields) as unknown as VitalsUpdate);
}

/** An overview in either form, as the full form the rest of the dashboard reads. */
export function decodeOverview(raw: Overview | (Omit<Overview, 'agents'> & { form: 'compact'; agents: CompactAgents })): Overview {
  if (!('form' in raw) || raw.form !== 'compact') return raw as Overview;
  return { ...raw, agents: expandAgents(raw.agents) };
}

/**
 * The summary with a vitals update applied, or the same object when the update is not newer
 * (a full summary pushed later already carries the same or later vitals).
 */
export function withVitals(a: AgentSummary, u: VitalsUpdate): AgentSummary {
  if (u.executions < a.executions || (u.executions === a.executions && u.last_seen <= a.last_seen)) return a;
  return { ...a, executions: u.executions, last_seen: u.last_seen, latest: u.latest };
}
