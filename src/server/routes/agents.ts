import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Deps } from '../app.js';
import { AgentIdParams, AgentsQuery, FeedbackBody, ReasonBody } from '../schemas.js';

type IdReq = FastifyRequest<{ Params: { id: string }; Body: { reason?: string } | undefined }>;

/** The operator's view of the fleet and every command on one agent or on all of a list. */
export function agentRoutes(app: FastifyInstance, d: Deps): void {
  const read = async (req: FastifyRequest) => void d.auth.principal(req);
  const write = async (req: FastifyRequest) => void d.auth.requireOperatorWrite(req);
  const security: Array<Record<string, string[]>> = [{ bearer: [] }, { session: [] }];
  const actor = (req: FastifyRequest) => d.auth.principal(req).actor;

  app.get('/api/v1/overview', { schema: { tags: ['dashboard'], summary: 'Everything the dashboard needs for its first paint', security }, preHandler: read }, async () => ({
    stats: d.cp.stats(),
    agents: d.cp.agents(),
    pending: d.cp.pending(),
    rejected: d.cp.rejected(),
    healings: d.cp.healings(100),
    patterns: d.cp.patterns(),
    incidents: d.cp.incidents(),
    store: await d.cp.storeStatus(),
    run_id: d.cp.runId,
    // The log position this overview reflects: stream events at or below it are already included.
    seq: d.cp.engine.lastSeq,
  }));

  app.get('/api/v1/stream', { schema: { tags: ['dashboard'], summary: 'Server-sent events: log events, changed agents, stats, store status', security }, preHandler: read }, (req, reply) => {
    d.sse.handle(req, reply);
  });

  app.get<{ Querystring: { status?: string; type?: string; model?: string; q?: string } }>('/api/v1/agents', { schema: { tags: ['agents'], summary: 'Agents, optionally filtered', security, querystring: AgentsQuery }, preHandler: read }, async (req) => ({ agents: d.cp.agents(req.query) }));

  app.get<{ Params: { id: string } }>('/api/v1/agents/:id', { schema: { tags: ['agents'], summary: 'Agent detail: baseline, deviations, recent vitals, history, diagnosis', security, params: AgentIdParams }, preHandler: read }, async (req) => d.cp.detail(req.params.id));

  const command = (path: string, summary: string, run: (req: IdReq) => unknown, body: unknown = ReasonBody) =>
    app.post(`/api/v1/agents/:id/${path}`, { schema: { tags: ['agents'], summary, security, params: AgentIdParams, body: body as never }, preHandler: write }, async (req) => {
      const agent = run(req as IdReq);
      await d.cp.durable();
      return { ok: true, agent };
    });

  command('approve', 'Approve healing of an agent awaiting approval', (req) => d.cp.approve(req.params.id, actor(req)));
  command('reject', 'Reject healing: the agent stays quarantined until "heal now"', (req) => d.cp.reject(req.params.id, actor(req)));
  command('heal', '"Heal now" for a rejected, quarantined or exhausted agent', (req) => d.cp.healNow(req.params.id, actor(req)));
  command('quarantine', 'Quarantine an agent by hand', (req) => d.cp.quarantine(req.params.id, actor(req), req.body?.reason));
  command('release', 'Release an agent to healthy', (req) => d.cp.release(req.params.id, actor(req), req.body?.reason));
  command('accept-baseline', 'Accept the current behaviour as normal (relearn the baseline)', (req) => d.cp.acceptBaseline(req.params.id, actor(req), req.body?.reason));
  command(
    'feedback',
    'Operator feedback: the diagnosis was wrong, it was X',
    (req) => {
      const b = (req as unknown as FastifyRequest<{ Params: { id: string }; Body: { diagnosis: string; note?: string } }>).body;
      return d.cp.feedback(req.params.id, b.diagnosis, actor(req), b.note);
    },
    FeedbackBody,
  );

  app.post('/api/v1/approvals/approve-all', { schema: { tags: ['agents'], summary: 'Approve every pending healing', security }, preHandler: write }, async (req) => {
    const who = actor(req);
    const done = d.cp.bulk('pending_approval', (id) => d.cp.approve(id, who));
    await d.cp.durable();
    return { ok: true, approved_count: done.length, agents: done };
  });
  app.post('/api/v1/approvals/reject-all', { schema: { tags: ['agents'], summary: 'Reject every pending healing', security }, preHandler: write }, async (req) => {
    const who = actor(req);
    const done = d.cp.bulk('pending_approval', (id) => d.cp.reject(id, who));
    await d.cp.durable();
    return { ok: true, rejected_count: done.length, agents: done };
  });
  app.post('/api/v1/rejected/heal-all', { schema: { tags: ['agents'], summary: '"Heal now" for every rejected agent', security }, preHandler: write }, async (req) => {
    const who = actor(req);
    const done = d.cp.bulk('rejected', (id) => d.cp.healNow(id, who));
    await d.cp.durable();
    return { ok: true, healed_count: done.length, agents: done };
  });
}
