import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { compactAgents } from '../../control/views.js';
import type { Deps } from '../app.js';
import { AgentIdParams, AgentsQuery, FeedbackBody, FeedFormQuery, ReasonBody } from '../schemas.js';

type IdReq = FastifyRequest<{ Params: { id: string }; Body: { reason?: string } | undefined }>;

const gzipAsync = promisify(gzip);

/** How long one serialised overview is served again: concurrent page loads share one build. */
export const OVERVIEW_TTL_MS = 250;
/**
 * zlib level. Measured on a 1,000-agent compact overview (216 KiB): level 1 gives 37 KiB in 2.6 ms,
 * level 6 gives 34 KiB in 5.6 ms. The compression runs on libuv's thread pool, off the event loop.
 */
const GZIP_LEVEL = 1;

type OverviewForm = 'full' | 'compact';

interface Serialised {
  form: OverviewForm;
  /** The SSE tick and log position it reflects, and when it was built (see overviewCache). */
  tick: number;
  seq: number;
  at: number;
  json: Buffer;
  gzipped: Promise<Buffer> | null;
}

/**
 * The last serialised overview per form. It is reused only while nothing it reflects can have
 * been missed by a client that opened the stream before asking for it: no new log event (seq)
 * and no agent batch pushed since (the SSE tick), and for at most OVERVIEW_TTL_MS.
 */
function overviewCache(now: () => number) {
  const last = new Map<OverviewForm, Serialised>();
  return {
    get(form: OverviewForm, tick: number, seq: number): Serialised | undefined {
      const s = last.get(form);
      return s && s.tick === tick && s.seq === seq && now() - s.at < OVERVIEW_TTL_MS ? s : undefined;
    },
    set(s: Serialised): void {
      last.set(s.form, s);
    },
  };
}

/** Accept-Encoding names gzip (or `*`) without refusing it with q=0 (RFC 9110 §12.5.3). */
export function acceptsGzip(header: string | undefined): boolean {
  if (typeof header !== 'string') return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return (coding === 'gzip' || coding === '*') && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** Sends pre-serialised JSON, gzipped when the client accepts it (the overview is ~200–500 KB with 1,000 agents). */
async function sendJson(req: FastifyRequest, reply: FastifyReply, s: Serialised): Promise<FastifyReply> {
  reply.header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').header('vary', 'accept-encoding');
  if (!acceptsGzip(req.headers['accept-encoding']) || s.json.length < 1024) return reply.send(s.json);
  s.gzipped ??= gzipAsync(s.json, { level: GZIP_LEVEL });
  return reply.header('content-encoding', 'gzip').send(await s.gzipped);
}

/** The operator's view of the fleet and every command on one agent or on all of a list. */
export function agentRoutes(app: FastifyInstance, d: Deps): void {
  const read = async (req: FastifyRequest) => void d.auth.principal(req);
  const write = async (req: FastifyRequest) => void d.auth.requireOperatorWrite(req);
  const security: Array<Record<string, string[]>> = [{ bearer: [] }, { session: [] }];
  const actor = (req: FastifyRequest) => d.auth.principal(req).actor;

  const cache = overviewCache(() => performance.now());
  /** Serialises the overview. Everything after the one await is read in the same tick, so `seq` matches the agents and timeline. */
  const buildOverview = async (form: OverviewForm): Promise<Serialised> => {
    const store = await d.cp.storeStatus();
    const at = performance.now();
    const tick = d.sse.tick;
    const seq = d.cp.engine.lastSeq;
    const agents = d.cp.agents();
    const common = {
      stats: d.cp.stats(),
      healings: d.cp.healings(100),
      patterns: d.cp.patterns(),
      incidents: d.cp.incidents(),
      store,
      run_id: d.cp.runId,
      // The log position this overview reflects: stream events at or below it are already included.
      seq,
    };
    // The compact form leaves out pending/rejected: the dashboard derives them from the agents.
    const body = form === 'compact' ? { form, ...common, agents: compactAgents(agents) } : { ...common, agents, pending: d.cp.pending(), rejected: d.cp.rejected() };
    return { form, tick, seq, at, json: Buffer.from(JSON.stringify(body)), gzipped: null };
  };

  app.get<{ Querystring: { form?: OverviewForm } }>(
    '/api/v1/overview',
    {
      schema: {
        tags: ['dashboard'],
        summary: 'Everything the dashboard needs for its first paint (form=compact: agents as positional rows)',
        security,
        querystring: FeedFormQuery,
      },
      preHandler: read,
    },
    async (req, reply) => {
      const form = req.query.form ?? 'full';
      let s = cache.get(form, d.sse.tick, d.cp.engine.lastSeq);
      if (!s) {
        s = await buildOverview(form);
        cache.set(s);
      }
      return sendJson(req, reply, s);
    },
  );

  app.get(
    '/api/v1/stream',
    {
      schema: { tags: ['dashboard'], summary: 'Server-sent events: log events, changed agents, stats, store status (form=compact: vitals-only changes as rows)', security, querystring: FeedFormQuery },
      preHandler: read,
    },
    (req, reply) => {
      d.sse.handle(req, reply);
    },
  );

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
