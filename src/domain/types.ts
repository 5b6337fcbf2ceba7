/** Vocabulary shared by every part of the product. Wire spellings are kept as-is. */

export const ANOMALY_TYPES = [
  'token_spike',
  'latency_spike',
  'tool_explosion',
  'high_retry_rate',
  'input_token_spike',
  'output_token_spike',
  'cost_spike',
  'prompt_change',
  'error_rate_spike',
] as const;
export type AnomalyType = (typeof ANOMALY_TYPES)[number];

export const DIAGNOSIS_TYPES = [
  'prompt_drift',
  'prompt_injection',
  'infinite_loop',
  'tool_instability',
  'memory_corruption',
  'cost_overrun',
  'external_cause',
  'unknown',
] as const;
export type DiagnosisType = (typeof DIAGNOSIS_TYPES)[number];

export const HEALING_ACTIONS = ['reset_memory', 'rollback_prompt', 'reduce_autonomy', 'revoke_tools', 'reset_agent'] as const;
export type HealingAction = (typeof HEALING_ACTIONS)[number];

export const LIFECYCLE_STATES = [
  'learning',
  'healthy',
  'quarantined',
  'pending_approval',
  'healing',
  'probation',
  'rejected',
  'exhausted',
] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

/** States in which the agent must not execute tasks (probation runs tasks under watch). */
export const CONTAINED_STATES: ReadonlySet<LifecycleState> = new Set(['quarantined', 'pending_approval', 'healing', 'rejected', 'exhausted']);

export type Severity = 'mild' | 'severe';

/** Who caused a change: 'system' for the engine, 'operator:<name>' / 'viewer:<name>' for people, 'agent' for the agent itself. */
export type Actor = string;

/** What the sentinel reports about one agent at one moment. */
export interface Infection {
  agent_id: string;
  timestamp: number;
  max_deviation: number;
  anomalies: AnomalyType[];
  /** Deviation in σ per metric name (latency, tokens, input_tokens, output_tokens, cost, tools, retry_rate, error_rate, prompt_change). */
  deviations: Record<string, number>;
  severity: Severity;
  /** Samples of evidence behind the detection (the length of the excursion that confirmed it): "time to detect" in samples. */
  evidence_samples?: number;
}

export interface Hypothesis {
  diagnosis: DiagnosisType;
  confidence: number;
  reasoning: string;
}

/** Ranked hypotheses, most likely first; never empty. */
export interface Diagnosis {
  agent_id: string;
  hypotheses: Hypothesis[];
}

export type HealTrigger = 'auto' | 'after_approval' | 'heal_now';
