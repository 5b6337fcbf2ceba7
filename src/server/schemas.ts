import Type from 'typebox';
import { DIAGNOSIS_TYPES, LIFECYCLE_STATES } from '../domain/types.js';
import { AGENT_ID_PATTERN, VitalsInputSchema } from '../domain/vitals.js';

/** Request schemas: they validate requests (see validator.ts) and generate the OpenAPI document. */

export const AgentIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, pattern: AGENT_ID_PATTERN }) });
export const AckParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, pattern: AGENT_ID_PATTERN }), directive_id: Type.String({ minLength: 1, maxLength: 256 }) });

export const ReasonBody = Type.Optional(Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false }));
export const FeedbackBody = Type.Object(
  { diagnosis: Type.Union(DIAGNOSIS_TYPES.map((d) => Type.Literal(d))), note: Type.Optional(Type.String({ maxLength: 500 })) },
  { additionalProperties: false },
);
export const AckBody = Type.Object({ ok: Type.Boolean(), detail: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false });
export const SessionBody = Type.Object({ token: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false });

export const RegisterBody = Type.Object(
  {
    agent_id: Type.String({ minLength: 1, maxLength: 128, pattern: AGENT_ID_PATTERN }),
    agent_type: Type.Optional(Type.String({ maxLength: 64 })),
    model: Type.Optional(Type.String({ maxLength: 128 })),
    provider: Type.Optional(Type.String({ maxLength: 64 })),
    mcp_servers: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: 64 })),
    control_url: Type.Optional(Type.String({ maxLength: 2048, pattern: '^https?://' })),
  },
  { additionalProperties: true },
);

/** Ingest accepts one record, an array, or NDJSON; records are validated in the handler so a batch error can name its index. */
export const IngestBody = Type.Union([VitalsInputSchema, Type.Array(VitalsInputSchema)], { 'x-handler-validates': true, description: 'One vitals record, a JSON array of them, or NDJSON (application/x-ndjson)' });

export const SeedApproveBody = Type.Object({ agent_id: Type.String({ minLength: 1, maxLength: 128 }), approved: Type.Optional(Type.Boolean()) });
export const SeedApproveAllBody = Type.Optional(Type.Object({ approved: Type.Optional(Type.Boolean()) }));
export const SeedHealBody = Type.Object({ agent_id: Type.String({ minLength: 1, maxLength: 128 }) });

/** `form=compact` selects the compact overview and stream (docs/API.md); other parameters are ignored as before. */
export const FeedFormQuery = Type.Object({ form: Type.Optional(Type.Union([Type.Literal('full'), Type.Literal('compact')])) });

export const AgentsQuery = Type.Object(
  {
    status: Type.Optional(Type.Union(LIFECYCLE_STATES.map((s) => Type.Literal(s)))),
    type: Type.Optional(Type.String({ maxLength: 64 })),
    model: Type.Optional(Type.String({ maxLength: 128 })),
    q: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

export const EventsQuery = Type.Object(
  {
    after_seq: Type.Optional(Type.Integer({ minimum: 0 })),
    before_seq: Type.Optional(Type.Integer({ minimum: 1 })),
    agent_id: Type.Optional(Type.String({ maxLength: 200 })),
    type: Type.Optional(Type.String({ maxLength: 500, description: 'Comma-separated event types' })),
    since: Type.Optional(Type.Number({ minimum: 0 })),
    until: Type.Optional(Type.Number({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);

/**
 * The healing directive waiting for an agent, or null. Written as one schema with `type: [object, null]`
 * rather than a union: the response serialiser handles a type list natively, while an anyOf makes it
 * try each branch with a validator (twice as slow per agent in a 1,000-record ingest reply).
 */
const Directive = Type.Unsafe<{ id: string; action: string; diagnosis: string } | null>({
  type: ['object', 'null'],
  properties: { id: { type: 'string' }, action: { type: 'string' }, diagnosis: { type: 'string' } },
  required: ['id', 'action', 'diagnosis'],
});
export const IngestReply = Type.Object({
  ok: Type.Boolean(),
  accepted: Type.Integer(),
  agent_id: Type.Optional(Type.String()),
  status: Type.Optional(Type.String()),
  directive: Type.Optional(Directive),
  agents: Type.Optional(Type.Record(Type.String(), Type.Object({ status: Type.String(), directive: Directive }))),
});

export const ErrorReply = Type.Object({ ok: Type.Literal(false), error: Type.String(), code: Type.String() }, { additionalProperties: true });
