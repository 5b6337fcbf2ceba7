import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { ImmuneError } from '../domain/errors.js';
import type { ImmuneEvent } from '../domain/events.js';
import { parseVitals, type Vitals } from '../domain/vitals.js';
import type { EngineSnapshot } from '../engine/engine.js';
import type { RegisteredAgent, SeedRecord } from '../store/store.js';
import type { Ctx } from './app.js';
import { AgentBody, EventsBatchBody, EventsQuery, PruneBody, RecordsBatchBody, RecordsQuery, RunBody, SnapshotBody } from './schemas.js';

const MAX_VITALS_BATCH = 100_000;

/**
 * Additions to the seed's contract, used by our ApiStore: batch writes and
 * the reads a restart needs (event log after a seq, the snapshot, agents).
 * A batch is validated whole before anything is written (the error names the index).
 */
export function storeRoutes(app: FastifyInstance, ctx: Ctx): void {
  const { store } = ctx;

  app.post('/api/v1/vitals/batch', async (req) => {
    const body = req.body as unknown;
    const list = Array.isArray(body) ? body : (body as { vitals?: unknown } | null)?.vitals;
    if (!Array.isArray(list)) throw new ImmuneError('IMM_ERR_VALIDATION', "field 'vitals' must be an array of vitals records", { field: 'vitals' });
    if (list.length > MAX_VITALS_BATCH) throw new ImmuneError('IMM_ERR_VALIDATION', `a batch holds at most ${MAX_VITALS_BATCH} records (got ${list.length})`, { field: 'vitals' });
    const now = ctx.now();
    const parsed: Vitals[] = list.map((v, i) => parseVitals(v, now, i));
    await store.appendVitals(ctx.runOf(req), parsed);
    return { ok: true, accepted: parsed.length };
  });

  app.get('/api/v1/vitals/latest-by-agent', async (req) => store.latestVitals(ctx.runOf(req)));

  app.post('/api/v1/events/batch', { schema: { body: EventsBatchBody } }, async (req) => {
    const { events } = req.body as { events: ImmuneEvent[] };
    await store.appendEvents(ctx.runOf(req), events);
    return { ok: true, accepted: events.length };
  });

  app.get('/api/v1/events', { schema: { querystring: EventsQuery } }, async (req) => {
    const q = req.query as Static<typeof EventsQuery>;
    return store.readEvents(ctx.runOf(req), {
      afterSeq: q.after_seq,
      beforeSeq: q.before_seq,
      agentId: q.agent_id,
      types: q.types === undefined ? undefined : q.types.split(',').filter(Boolean),
      sinceTs: q.since,
      untilTs: q.until,
      limit: q.limit,
      order: q.order,
    });
  });

  app.put('/api/v1/snapshot', { schema: { body: SnapshotBody } }, async (req, reply) => {
    await store.saveSnapshot(ctx.runOf(req), req.body as EngineSnapshot);
    return reply.code(204).send();
  });

  app.get('/api/v1/snapshot', async (req) => {
    const s = await store.loadSnapshot(ctx.runOf(req));
    if (!s) throw new ImmuneError('IMM_ERR_NOT_FOUND', 'no snapshot saved for this run');
    return s;
  });

  app.post('/api/v1/agents', { schema: { body: AgentBody } }, async (req, reply) => {
    await store.upsertAgent(ctx.runOf(req), req.body as RegisteredAgent);
    return reply.code(204).send();
  });

  app.get('/api/v1/agents', async (req) => store.agents(ctx.runOf(req)));

  app.post('/api/v1/records/batch', { schema: { body: RecordsBatchBody } }, async (req) => {
    const { records } = req.body as { records: SeedRecord[] };
    await store.appendRecords(ctx.runOf(req), records);
    return { ok: true, accepted: records.length };
  });

  app.get('/api/v1/records', { schema: { querystring: RecordsQuery } }, async (req) => {
    const q = req.query as Static<typeof RecordsQuery>;
    return store.readRecords(ctx.runOf(req), { measurement: q.measurement, agentId: q.agent_id, limit: q.limit });
  });

  app.post('/api/v1/runs', { schema: { body: RunBody } }, async (req) => {
    const runId = (req.body as Static<typeof RunBody>).run_id ?? ctx.runOf(req);
    await store.registerRun(runId);
    return { run_id: runId };
  });

  app.get('/api/v1/runs/latest', async () => ({ run_id: await store.latestRun() }));

  app.post('/api/v1/prune', { schema: { body: PruneBody } }, async (req) => ({ deleted: await store.pruneVitals((req.body as Static<typeof PruneBody>).older_than) }));
}
