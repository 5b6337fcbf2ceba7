import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CONTAINED_STATES } from '../../domain/types.js';
import type { Deps } from '../app.js';
import { SeedApproveAllBody, SeedApproveBody, SeedHealBody } from '../schemas.js';

/** The seed prototype's endpoints with its request and response shapes, so its dashboard and scripts keep working. */
export function seedRoutes(app: FastifyInstance, d: Deps): void {
  const read = async (req: FastifyRequest) => void d.auth.principal(req);
  const write = async (req: FastifyRequest) => void d.auth.requireOperatorWrite(req);
  const tags = ['seed-compatible'];
  const security: Array<Record<string, string[]>> = [{ bearer: [] }, { session: [] }];
  const actor = (req: FastifyRequest) => d.auth.principal(req).actor;

  app.get('/api/status', { schema: { tags, security }, preHandler: read }, async () => {
    const s = d.cp.stats();
    return {
      running: true,
      baselines_learned: s.baselines_learned,
      runtime: s.runtime_seconds,
      healing_in_progress: [...d.cp.engine.all()].filter((rt) => rt.wf.state === 'healing' || rt.wf.state === 'probation').map((rt) => rt.id),
    };
  });

  app.get('/api/agents', { schema: { tags, security }, preHandler: read }, async () =>
    [...d.cp.engine.all()].map((rt) => {
      const l = rt.last;
      return {
        id: rt.id,
        type: rt.meta.agent_type,
        model: rt.meta.model,
        mcp_servers: rt.meta.mcp_servers,
        status: rt.wf.state,
        infected: CONTAINED_STATES.has(rt.wf.state) && rt.wf.infection !== null,
        infection_type: rt.wf.diagnosis?.hypotheses[0]?.diagnosis ?? null,
        executions: rt.executions,
        has_baseline: rt.wf.state !== 'learning',
        healing_rejected: rt.wf.state === 'rejected',
        healing_pending: rt.wf.state === 'pending_approval',
        latest_metrics: l
          ? { latency: l.latency_ms, tokens: l.token_count, input_tokens: l.input_tokens, output_tokens: l.output_tokens, cost: l.cost, tools: l.tool_calls, model: l.model, error_type: l.error_type }
          : null,
      };
    }),
  );

  app.get('/api/infections', { schema: { tags, security }, preHandler: read }, async () => ({
    total: d.cp.counters.infections,
    current_quarantined: [...d.cp.engine.all()].filter((rt) => CONTAINED_STATES.has(rt.wf.state)).map((rt) => rt.id),
  }));

  app.get('/api/healings', { schema: { tags, security }, preHandler: read }, async () => d.cp.healings(100));
  app.get('/api/pending-approvals', { schema: { tags, security }, preHandler: read }, async () => d.cp.pending());
  app.get('/api/rejected-approvals', { schema: { tags, security }, preHandler: read }, async () => d.cp.rejected());

  app.get('/api/stats', { schema: { tags, security }, preHandler: read }, async () => {
    const s = d.cp.stats();
    const totals = d.cp.engine.memory.totals();
    return {
      total_agents: s.total_agents,
      total_executions: s.total_executions,
      runtime: s.runtime_seconds,
      baselines_learned: s.baselines_learned,
      total_infections: s.total_infections,
      current_infected: s.current_quarantined,
      total_healed: s.total_healed,
      failed_healings: s.failed_healings,
      total_quarantines: s.total_quarantines,
      current_quarantined: s.current_quarantined,
      success_rate: s.success_rate,
      immune_records: totals.attempts,
      learned_patterns: d.cp.patterns(),
    };
  });

  app.post<{ Body: { agent_id: string; approved?: boolean } }>('/api/approve-healing', { schema: { tags, security, body: SeedApproveBody }, preHandler: write }, async (req) => {
    const { agent_id, approved } = req.body;
    if (approved) d.cp.approve(agent_id, actor(req));
    else d.cp.reject(agent_id, actor(req));
    await d.cp.durable();
    return { ok: true, approved: approved === true };
  });

  app.post<{ Body: { approved?: boolean } | undefined }>('/api/approve-all', { schema: { tags, security, body: SeedApproveAllBody }, preHandler: write }, async (req) => {
    const who = actor(req);
    const approved = req.body?.approved === true;
    const done = d.cp.bulk('pending_approval', (id) => (approved ? d.cp.approve(id, who) : d.cp.reject(id, who)));
    await d.cp.durable();
    return { ok: true, approved_count: approved ? done.length : 0, rejected_count: approved ? 0 : done.length };
  });

  app.post<{ Body: { agent_id: string } }>('/api/heal-explicitly', { schema: { tags, security, body: SeedHealBody }, preHandler: write }, async (req) => {
    d.cp.healNow(req.body.agent_id, actor(req));
    await d.cp.durable();
    return { ok: true };
  });

  app.post('/api/heal-all-rejected', { schema: { tags, security }, preHandler: write }, async (req) => {
    const who = actor(req);
    const done = d.cp.bulk('rejected', (id) => d.cp.healNow(id, who));
    await d.cp.durable();
    return { ok: true, healed_count: done.length };
  });
}
