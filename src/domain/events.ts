import type { Actor, Diagnosis, DiagnosisType, HealingAction, HealTrigger, Infection } from './types.js';

/** Metadata an agent registers (or that is learned from its first vitals). */
export interface AgentMeta {
  agent_type: string;
  model: string;
  provider: string;
  mcp_servers: string[];
  /** Where the healer POSTs directives, when the agent registered one. */
  control_url?: string;
  /** 'simulated' for in-process agents, 'external' for anything reporting over HTTP/OTLP. */
  source: 'simulated' | 'external';
}

export interface FleetIncident {
  id: string;
  /** "model:<name>" or "provider:<name>" — what the affected agents share. */
  group: string;
  started_at: number;
  ended_at?: number;
  agents: string[];
  anomalies: string[];
  max_deviation: number;
}

interface Base {
  /** Monotonic position in the log. */
  seq: number;
  /** Epoch seconds of the change (event time: the sample's timestamp when a sample caused it). */
  ts: number;
  agent_id: string;
  actor: Actor;
  reason: string;
}

/** Every state change is one of these, appended to the log; current state is a fold over them. */
export type ImmuneEvent = Base &
  (
    | { type: 'agent_registered'; meta: AgentMeta }
    | { type: 'baseline_ready' }
    | { type: 'baseline_reset' }
    | { type: 'baseline_accepted' }
    | { type: 'prompt_adopted'; prompt_hash: string; previous: string }
    | { type: 'infection_detected'; infection: Infection; diagnosis: Diagnosis }
    | { type: 'approval_requested' }
    | { type: 'approved' }
    | { type: 'rejected' }
    | { type: 'heal_now' }
    | { type: 'healing_started'; trigger: HealTrigger }
    | { type: 'action_started'; attempt_id: string; action: HealingAction; diagnosis: DiagnosisType; trigger: HealTrigger }
    | { type: 'action_applied'; attempt_id: string; action: HealingAction; diagnosis: DiagnosisType; detail: string }
    | { type: 'action_failed'; attempt_id: string; action: HealingAction; diagnosis: DiagnosisType; detail: string }
    | { type: 'probation_passed'; attempt_id: string; action: HealingAction; diagnosis: DiagnosisType }
    | { type: 'probation_failed'; attempt_id: string; action: HealingAction; diagnosis: DiagnosisType; infection: Infection }
    | { type: 'exhausted' }
    | { type: 'quarantined' }
    | { type: 'released' }
    | { type: 'diagnosis_feedback'; diagnosis: DiagnosisType; previous: DiagnosisType | null }
    | { type: 'fleet_incident_started'; incident: FleetIncident }
    | { type: 'fleet_incident_ended'; incident: FleetIncident }
  );

export type ImmuneEventType = ImmuneEvent['type'];

/** An event before the log assigns its position. */
export type NewEvent = ImmuneEvent extends infer E ? (E extends ImmuneEvent ? Omit<E, 'seq'> : never) : never;
