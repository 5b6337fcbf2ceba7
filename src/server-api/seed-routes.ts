import type { Static } from 'typebox';
import type { FastifyInstance } from 'fastify';
import { ImmuneError } from '../domain/errors.js';
import type { ImmuneEventType } from '../domain/events.js';
import { parseVitals } from '../domain/vitals.js';
import { approvalsIn, failedActions, healingTotals, latestApprovals, patternSummary, recentActions, seedBaselineProfile, seedRowsFromEvents } from '../store/seed-views.js';
import type { SeedMeasurement, SeedRecord } from '../store/store.js';
import type { Ctx } from './app.js';
import {
  ActionLogBody,
  AgentQuery,
  ApprovalBody,
  BaselineBody,
  BaselineParams,
  FailedActionsQuery,
  HealingBody,
  InfectionBody,
  LimitQuery,
  OptionalAgentQuery,
  QuarantineBody,
  RecentQuery,
} from './schemas.js';

/** Events that feed the approval views (an approval row needs the infection before it). */
const APPROVAL_TYPES: ImmuneEventType[] = ['infection_detected', 'approval_requested', 'approved', 'rejected', 'heal_now', 'released', 'baseline_accepted', 'probation_passed'];
const HEALING_TYPES: ImmuneEventType[] = ['action_started', 'action_failed', 'probation_passed', 'probation_failed'];

/** Rows of the given seed measurements: the view over the event log merged with what seed clients wrote. */
async function seedRows(ctx: Ctx, run: string, measurement: SeedMeasurement, types?: ImmuneEventType[], lastEvents?: number): Promise<SeedRecord[]> {
  const events = lastEvents !== undefined ? (await ctx.store.readEvents(run, { order: 'desc', limit: lastEvents })).reverse() : await ctx.store.readEvents(run, { types });
  const derived = seedRowsFromEvents(events).filter((r) => r.measurement === measurement);
  const stored = await ctx.store.readRecords(run, { measurement, limit: lastEvents });
  return [...derived, ...stored].sort((a, b) => a.ts - b.ts);
}

/** Drops nulls so a record keeps only what the client said. */
function present(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== null && v !== undefined && k !== 'agent_id'));
}

/** The seed's REST contract (prototype server/app.py), path for path. */
export function seedRoutes(app: FastifyInstance, ctx: Ctx): void {
  const { store } = ctx;

  app.post('/api/v1/run', async () => {
    const run_id = `run-${crypto.randomUUID().replace(/-/g, '').slice(0, 12)}`;
    await store.registerRun(run_id);
    return { run_id };
  });

  // ───────────── vitals ─────────────
  app.post('/api/v1/vitals', async (req, reply) => {
    const v = parseVitals(req.body, ctx.now());
    await store.appendVitals(ctx.runOf(req), [v]);
    return reply.code(204).send();
  });

  app.get('/api/v1/vitals/recent', { schema: { querystring: RecentQuery } }, async (req) => {
    const q = req.query as Static<typeof RecentQuery>;
    return store.recentVitals(ctx.runOf(req), q.agent_id, { windowSeconds: q.window_seconds ?? 30, limit: q.limit, now: q.now });
  });

  app.get('/api/v1/vitals/all', { schema: { querystring: AgentQuery } }, async (req) => {
    return store.recentVitals(ctx.runOf(req), (req.query as Static<typeof AgentQuery>).agent_id, {});
  });

  app.get('/api/v1/vitals/latest', { schema: { querystring: AgentQuery } }, async (req) => {
    const agentId = (req.query as Static<typeof AgentQuery>).agent_id;
    const [latest] = await store.recentVitals(ctx.runOf(req), agentId, { limit: 1 });
    if (!latest) throw new ImmuneError('IMM_ERR_NOT_FOUND', `no vitals for agent '${agentId}' in this run`, { agent_id: agentId });
    return latest;
  });

  app.get('/api/v1/vitals/execution-count', { schema: { querystring: AgentQuery } }, async (req) => ({ count: await store.vitalsCount(ctx.runOf(req), (req.query as Static<typeof AgentQuery>).agent_id) }));
  app.get('/api/v1/vitals/total-executions', async (req) => ({ total: await store.vitalsCount(ctx.runOf(req)) }));

  // ───────────── baselines ─────────────
  app.post('/api/v1/baselines', { schema: { body: BaselineBody } }, async (req, reply) => {
    const b = req.body as Static<typeof BaselineBody>;
    await store.appendRecords(ctx.runOf(req), [{ measurement: 'baseline_profile', agent_id: b.agent_id, ts: ctx.now(), fields: present(b) }]);
    return reply.code(204).send();
  });

  app.get('/api/v1/baselines/count', async (req) => {
    const run = ctx.runOf(req);
    const ids = new Set((await store.loadSnapshot(run))?.agents.filter((a) => a.baseline.n > 0).map((a) => a.id));
    for (const r of await store.readRecords(run, { measurement: 'baseline_profile' })) ids.add(r.agent_id);
    return { count: ids.size };
  });

  app.get('/api/v1/baselines/:agent_id', { schema: { params: BaselineParams } }, async (req) => {
    const run = ctx.runOf(req);
    const agentId = (req.params as Static<typeof BaselineParams>).agent_id;
    // A seed client's own profile wins over the one derived from our engine snapshot: it is what that client wrote.
    const [written] = await store.readRecords(run, { measurement: 'baseline_profile', agentId, limit: 1 });
    if (written) return { agent_id: agentId, ...written.fields };
    const mine = (await store.loadSnapshot(run))?.agents.find((a) => a.id === agentId);
    if (mine && mine.baseline.n > 0) return seedBaselineProfile(agentId, mine.baseline);
    throw new ImmuneError('IMM_ERR_NOT_FOUND', `no baseline for agent '${agentId}' in this run`, { agent_id: agentId });
  });

  // ───────────── infection and quarantine events ─────────────
  app.post('/api/v1/events/infection', { schema: { body: InfectionBody } }, async (req, reply) => {
    const b = req.body as Static<typeof InfectionBody>;
    // The prototype's client sends `severity`, its server read `max_deviation`: accept either.
    const severity = b.max_deviation ?? b.severity ?? 0;
    const fields = { severity, max_deviation: severity, anomalies: b.anomalies ?? [], deviations: b.deviations ?? {}, diagnosis_type: b.diagnosis_type ?? 'unknown' };
    await store.appendRecords(ctx.runOf(req), [{ measurement: 'infection_event', agent_id: b.agent_id, ts: ctx.now(), fields }]);
    return reply.code(204).send();
  });

  app.post('/api/v1/events/quarantine', { schema: { body: QuarantineBody } }, async (req, reply) => {
    const b = req.body as Static<typeof QuarantineBody>;
    await store.appendRecords(ctx.runOf(req), [{ measurement: 'quarantine_event', agent_id: b.agent_id, ts: ctx.now(), fields: { action: b.action, duration_s: b.duration_s ?? null } }]);
    return reply.code(204).send();
  });

  // ───────────── approvals ─────────────
  app.post('/api/v1/approvals', { schema: { body: ApprovalBody } }, async (req, reply) => {
    const b = req.body as Static<typeof ApprovalBody>;
    const fields = present({ ...b, severity: b.severity ?? b.max_deviation ?? null, max_deviation: undefined });
    await store.appendRecords(ctx.runOf(req), [{ measurement: 'approval_event', agent_id: b.agent_id, ts: ctx.now(), fields }]);
    return reply.code(204).send();
  });

  app.get('/api/v1/approvals/latest', { schema: { querystring: OptionalAgentQuery } }, async (req) => {
    const agentId = (req.query as Static<typeof OptionalAgentQuery>).agent_id;
    const latest = latestApprovals(await seedRows(ctx, ctx.runOf(req), 'approval_event', APPROVAL_TYPES));
    if (agentId === undefined) return latest;
    return latest[agentId] ?? {};
  });

  app.get('/api/v1/approvals/pending', async (req) => approvalsIn(await seedRows(ctx, ctx.runOf(req), 'approval_event', APPROVAL_TYPES), 'pending'));
  app.get('/api/v1/approvals/rejected', async (req) => approvalsIn(await seedRows(ctx, ctx.runOf(req), 'approval_event', APPROVAL_TYPES), 'rejected'));

  // ───────────── healing memory ─────────────
  app.post('/api/v1/healing/events', { schema: { body: HealingBody } }, async (req, reply) => {
    const b = req.body as Static<typeof HealingBody>;
    const fields = { diagnosis_type: b.diagnosis_type, healing_action: b.healing_action, success: b.success ?? false, validation_passed: b.validation_passed ?? false, trigger: b.trigger ?? 'auto', message: b.message ?? '' };
    await store.appendRecords(ctx.runOf(req), [{ measurement: 'healing_event', agent_id: b.agent_id, ts: ctx.now(), fields }]);
    return reply.code(204).send();
  });

  app.get('/api/v1/healing/failed-actions', { schema: { querystring: FailedActionsQuery } }, async (req) => {
    const q = req.query as Static<typeof FailedActionsQuery>;
    return { actions: failedActions(await seedRows(ctx, ctx.runOf(req), 'healing_event', HEALING_TYPES), q.agent_id, q.diagnosis_type) };
  });
  app.get('/api/v1/healing/total', async (req) => ({ total: healingTotals(await seedRows(ctx, ctx.runOf(req), 'healing_event', HEALING_TYPES)).total }));
  app.get('/api/v1/healing/success-rate', async (req) => ({ rate: healingTotals(await seedRows(ctx, ctx.runOf(req), 'healing_event', HEALING_TYPES)).rate }));
  app.get('/api/v1/healing/pattern-summary', async (req) => patternSummary(await seedRows(ctx, ctx.runOf(req), 'healing_event', HEALING_TYPES)));

  // ───────────── action log ─────────────
  app.post('/api/v1/action-log', { schema: { body: ActionLogBody } }, async (req, reply) => {
    const b = req.body as Static<typeof ActionLogBody>;
    await store.appendRecords(ctx.runOf(req), [{ measurement: 'action_log', agent_id: b.agent_id ?? '', ts: ctx.now(), fields: { type: b.action_type ?? 'unknown', payload: b.payload ?? {} } }]);
    return reply.code(204).send();
  });

  app.get('/api/v1/action-log/recent', { schema: { querystring: LimitQuery } }, async (req) => {
    const limit = (req.query as Static<typeof LimitQuery>).limit ?? 50;
    return recentActions(await seedRows(ctx, ctx.runOf(req), 'action_log', undefined, limit), limit);
  });
}
