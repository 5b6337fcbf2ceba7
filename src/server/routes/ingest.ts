import type { Static } from 'typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ControlPlane } from '../../control/control-plane.js';
import type { AgentMeta } from '../../domain/events.js';
import { ImmuneError } from '../../domain/errors.js';
import type { Deps } from '../app.js';
import { AckBody, AckParams, AgentIdParams, IngestBody, IngestReply, RegisterBody } from '../schemas.js';

type IngestReplyBody = Static<typeof IngestReply>;

/** What agents call with the ingest key: report vitals, register, acknowledge directives. */
export function ingestRoutes(app: FastifyInstance, d: Deps): void {
  const security: Array<Record<string, string[]>> = [{ ingestKey: [] }];
  // A callback hook, not an async one: no promise per request on the ingest path.
  const ingestKey = (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    try {
      d.auth.checkIngestKey(req);
      done();
    } catch (err) {
      done(err as Error);
    }
  };

  app.post('/api/v1/ingest', {
    schema: { tags: ['ingest'], summary: 'Report vitals: one record, a JSON array, or NDJSON. A batch with a bad record is rejected whole.', security, body: IngestBody, response: { 200: IngestReply } },
    preHandler: ingestKey,
  }, async (req) => ingest(d.cp, req.body));

  app.post<{ Body: { agent_id: string } & Partial<AgentMeta> }>('/api/v1/agents/register', {
    schema: { tags: ['ingest'], summary: 'Register an agent (type, model, MCP servers, optional control URL)', security, body: RegisterBody },
    preHandler: ingestKey,
  }, async (req) => {
    const { agent_id, agent_type, model, provider, mcp_servers, control_url } = req.body;
    const status = d.cp.register(agent_id, { agent_type, model, provider, mcp_servers, control_url, source: 'external' });
    await d.cp.durable();
    return { ok: true, status, agent_id };
  });

  app.get<{ Params: { id: string } }>('/api/v1/agents/:id/directive', {
    schema: { tags: ['ingest'], summary: 'The agent polls its status and pending healing directive (for agents that stopped working while quarantined)', security, params: AgentIdParams },
    preHandler: ingestKey,
  }, async (req) => {
    const rt = d.cp.engine.require(req.params.id);
    return { ok: true, agent_id: rt.id, status: rt.wf.state, directive: d.cp.directiveOf(rt.id) };
  });

  app.post<{ Params: { id: string; directive_id: string }; Body: { ok: boolean; detail?: string } }>('/api/v1/agents/:id/directives/:directive_id/ack', {
    schema: { tags: ['ingest'], summary: 'The agent reports whether it applied a healing directive', security, params: AckParams, body: AckBody },
    preHandler: ingestKey,
  }, async (req) => {
    d.cp.engine.require(req.params.id);
    d.directives.acknowledge(req.params.id, req.params.directive_id, req.body.ok, req.body.detail ?? '');
    await d.cp.durable();
    return { ok: true, agent: d.cp.summary(req.params.id) };
  });
}

const EXTERNAL: Partial<AgentMeta> = { source: 'external' };

/**
 * Ingests a parsed body (one record or an array of them) and answers once it is stored. Shared by the
 * route and the fast path (fast-ingest.ts), which serialises the answer with JSON.stringify: it holds
 * exactly IngestReply's properties, in its order, so both give the same bytes.
 */
export async function ingest(cp: ControlPlane, body: unknown): Promise<IngestReplyBody> {
  const batch = Array.isArray(body);
  const records: unknown[] = batch ? body : [body];
  if (batch && records.length === 0) throw new ImmuneError('IMM_ERR_VALIDATION', 'the batch is empty', { field: '(batch)' });
  const { accepted, agents } = cp.ingest(records, { batch, meta: EXTERNAL });
  await cp.durable();
  if (!batch) {
    const [[agent_id, s]] = agents;
    return { ok: true, accepted, agent_id, status: s.status, directive: s.directive };
  }
  // fromEntries defines own properties: an agent named __proto__ is a key like any other.
  return { ok: true, accepted, agents: Object.fromEntries(agents) };
}
