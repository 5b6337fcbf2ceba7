import Type, { type Static } from 'typebox';
import type { ImmuneEventType } from '../domain/events.js';
import { AGENT_ID_PATTERN } from '../domain/vitals.js';
import { SEED_MEASUREMENTS } from '../store/store.js';

/** Request shapes of `immune server-api`: the seed's bodies (unknown fields ignored) and our batch additions. */

export const RUN_ID_PATTERN = '^[A-Za-z0-9._:@-]{1,128}$';
const AgentId = Type.String({ minLength: 1, maxLength: 128, pattern: AGENT_ID_PATTERN });
const Num = Type.Number({ minimum: 0, maximum: 1e12 });
const Text = (max: number) => Type.String({ maxLength: max });
const Opt = <T extends Parameters<typeof Type.Optional>[0]>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));

export const InfectionBody = Type.Object({
  agent_id: AgentId,
  severity: Opt(Num),
  max_deviation: Opt(Num),
  anomalies: Opt(Type.Array(Text(64), { maxItems: 64 })),
  deviations: Opt(Type.Record(Type.String({ maxLength: 64 }), Type.Number())),
  diagnosis_type: Opt(Text(64)),
});

export const QuarantineBody = Type.Object({
  agent_id: AgentId,
  action: Type.String({ minLength: 1, maxLength: 32 }),
  duration_s: Opt(Num),
});

export const ApprovalBody = Type.Object({
  agent_id: AgentId,
  decision: Type.String({ minLength: 1, maxLength: 32 }),
  severity: Opt(Num),
  max_deviation: Opt(Num),
  anomalies: Opt(Type.Array(Text(64), { maxItems: 64 })),
  diagnosis_type: Opt(Text(64)),
  reasoning: Opt(Text(4096)),
  infection_payload: Opt(Type.Record(Type.String(), Type.Unknown())),
});

export const HealingBody = Type.Object({
  agent_id: AgentId,
  diagnosis_type: Type.String({ minLength: 1, maxLength: 64 }),
  healing_action: Type.String({ minLength: 1, maxLength: 64 }),
  success: Opt(Type.Boolean()),
  validation_passed: Opt(Type.Boolean()),
  trigger: Opt(Text(32)),
  message: Opt(Text(4096)),
});

export const ActionLogBody = Type.Object({
  action_type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  agent_id: Type.Optional(Type.Union([AgentId, Type.Literal('')])),
  payload: Opt(Type.Record(Type.String(), Type.Unknown())),
});

/** The seed's baseline profile: agent_id plus numeric *_mean/_stddev/_p95 and sample_size. */
export const BaselineBody = Type.Object({ agent_id: AgentId, sample_size: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: Type.Union([Type.Number(), Type.String({ maxLength: 256 }), Type.Null()]) });

/** Every event type (the compiler checks this list against ImmuneEventType): a restart folds these, so unknown ones are refused at the door. */
const EVENT_TYPES = {
  agent_registered: true,
  baseline_ready: true,
  baseline_reset: true,
  baseline_accepted: true,
  prompt_adopted: true,
  infection_detected: true,
  approval_requested: true,
  approved: true,
  rejected: true,
  heal_now: true,
  healing_started: true,
  action_started: true,
  action_applied: true,
  action_failed: true,
  probation_passed: true,
  probation_failed: true,
  exhausted: true,
  quarantined: true,
  released: true,
  diagnosis_feedback: true,
  fleet_incident_started: true,
  fleet_incident_ended: true,
} as const satisfies Record<ImmuneEventType, true>;

const Event = Type.Object(
  {
    seq: Type.Integer({ minimum: 1 }),
    ts: Type.Number({ minimum: 0 }),
    agent_id: Type.String({ minLength: 1, maxLength: 256 }),
    type: Type.Union(Object.keys(EVENT_TYPES).map((t) => Type.Literal(t))),
    actor: Type.String({ maxLength: 256 }),
    reason: Type.String({ maxLength: 8192 }),
  },
  { additionalProperties: true },
);
export const EventsBatchBody = Type.Object({ events: Type.Array(Event, { maxItems: 100_000 }) });

const SnapshotAgent = Type.Object({ id: Type.String({ minLength: 1 }), baseline: Type.Object({ n: Type.Number() }, { additionalProperties: true }), sentinel: Type.Object({}, { additionalProperties: true }), executions: Type.Number(), last_seen: Type.Number() }, { additionalProperties: true });
export const SnapshotBody = Type.Object({ seq: Type.Integer({ minimum: 0 }), agents: Type.Array(SnapshotAgent) });

export const AgentBody = Type.Object({
  agent_id: AgentId,
  meta: Type.Object(
    {
      agent_type: Text(64),
      model: Text(128),
      provider: Text(64),
      mcp_servers: Type.Array(Text(128), { maxItems: 64 }),
      control_url: Type.Optional(Type.String({ maxLength: 2048 })),
      source: Type.Union([Type.Literal('simulated'), Type.Literal('external')]),
    },
    { additionalProperties: false },
  ),
});

const Measurement = Type.Union(SEED_MEASUREMENTS.map((m) => Type.Literal(m)));
export const RecordsBatchBody = Type.Object({
  records: Type.Array(Type.Object({ measurement: Measurement, agent_id: Type.String({ maxLength: 256 }), ts: Type.Number({ minimum: 0 }), fields: Type.Record(Type.String(), Type.Unknown()) }), { maxItems: 100_000 }),
});

export const PruneBody = Type.Object({ older_than: Type.Number({ minimum: 0 }) });
export const RunBody = Type.Object({ run_id: Type.Optional(Type.String({ pattern: RUN_ID_PATTERN })) });

const Limit = (max: number) => Type.Optional(Type.Integer({ minimum: 1, maximum: max }));
export const AgentQuery = Type.Object({ agent_id: AgentId });
export const RecentQuery = Type.Object({ agent_id: AgentId, window_seconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })), limit: Limit(100_000), now: Type.Optional(Type.Number({ minimum: 0 })) });
export const OptionalAgentQuery = Type.Object({ agent_id: Type.Optional(AgentId) });
export const FailedActionsQuery = Type.Object({ agent_id: AgentId, diagnosis_type: Type.String({ minLength: 1, maxLength: 64 }) });
export const LimitQuery = Type.Object({ limit: Limit(10_000) });
export const EventsQuery = Type.Object({
  after_seq: Type.Optional(Type.Integer({ minimum: 0 })),
  before_seq: Type.Optional(Type.Integer({ minimum: 0 })),
  agent_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  types: Type.Optional(Type.String({ maxLength: 2048 })),
  since: Type.Optional(Type.Number()),
  until: Type.Optional(Type.Number()),
  limit: Limit(1_000_000),
  order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
});
export const RecordsQuery = Type.Object({ measurement: Measurement, agent_id: Type.Optional(Type.String({ maxLength: 256 })), limit: Limit(1_000_000) });
export const BaselineParams = Type.Object({ agent_id: AgentId });

export type InfectionBody = Static<typeof InfectionBody>;
export type ApprovalBody = Static<typeof ApprovalBody>;
export type HealingBody = Static<typeof HealingBody>;
