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

/** The summaries of a compact overview, in its order. */
export function expandAgents(c: CompactAgents): AgentSummary[] {
  return c.rows.map((r) => record(c.agent_fields, r, c.latest_fields) as unknown as AgentSummary);
}

/** The updates of a `vitals` message. */
export function expandVitals(m: VitalsMessage): VitalsUpdate[] {
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
