import type { ImmuneEvent } from '../domain/events.js';
import type { EventQuery } from './store.js';

/** True when the event matches every condition of the query (the order and limit are applied by filterEvents). */
export function matchesEvent(e: ImmuneEvent, q: EventQuery, types: ReadonlySet<string> | null = q.types ? new Set(q.types) : null): boolean {
  return (
    (q.afterSeq === undefined || e.seq > q.afterSeq) &&
    (q.beforeSeq === undefined || e.seq < q.beforeSeq) &&
    (q.agentId === undefined || e.agent_id === q.agentId) &&
    (types === null || types.has(e.type)) &&
    (q.sinceTs === undefined || e.ts >= q.sinceTs) &&
    (q.untilTs === undefined || e.ts <= q.untilTs)
  );
}

/**
 * The reference semantics of EventQuery, used by the in-memory store and by
 * adapters that filter client-side: matching events by seq (asc or desc),
 * one per seq (a batch re-sent after a retry is not double-counted), at most `limit`.
 */
export function filterEvents(events: Iterable<ImmuneEvent>, q: EventQuery): ImmuneEvent[] {
  const types = q.types ? new Set(q.types) : null;
  const bySeq = new Map<number, ImmuneEvent>();
  for (const e of events) if (!bySeq.has(e.seq) && matchesEvent(e, q, types)) bySeq.set(e.seq, e);
  const list = [...bySeq.values()].sort((a, b) => (q.order === 'desc' ? b.seq - a.seq : a.seq - b.seq));
  return q.limit !== undefined ? list.slice(0, q.limit) : list;
}
