import type { FastifyInstance } from 'fastify';
import type { Deps } from '../app.js';
import { EventsQuery } from '../schemas.js';

interface Q {
  after_seq?: number;
  before_seq?: number;
  agent_id?: string;
  type?: string;
  since?: number;
  until?: number;
  limit?: number;
}

/** The audit log: every state change with who, when and why; newest first, paged by seq. */
export function eventRoutes(app: FastifyInstance, d: Deps): void {
  app.get<{ Querystring: Q }>('/api/v1/events', {
    schema: { tags: ['events'], summary: 'Event/audit log, newest first; page with before_seq', security: [{ bearer: [] as string[] }, { session: [] as string[] }], querystring: EventsQuery },
    preHandler: async (req) => void d.auth.principal(req),
  }, async (req) => {
    const q = req.query;
    const limit = q.limit ?? 100;
    const { events, partial } = await d.cp.events({
      afterSeq: q.after_seq,
      beforeSeq: q.before_seq,
      agentId: q.agent_id,
      types: q.type ? q.type.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
      sinceTs: q.since,
      untilTs: q.until,
      limit,
      order: 'desc',
    });
    return { events, next_before_seq: events.length === limit ? events[events.length - 1].seq : null, ...(partial ? { partial: true, note: 'the store is unreachable: only the most recent events held in memory are shown' } : {}) };
  });
}
