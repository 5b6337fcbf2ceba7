/** Wire types of the dashboard API (docs/API.md). Wire spellings are kept as-is. */

export const STATUSES = ['learning', 'healthy', 'quarantined', 'pending_approval', 'healing', 'probation', 'rejected', 'exhausted'] as const;
export type Status = (typeof STATUSES)[number];

export type Trigger = 'auto' | 'after_approval' | 'heal_now';

export interface LatestVitals {
  latency: number;
  tokens: number;
  input_tokens: number;
  output_tokens: number;
  cost: number;
  tools: number;
  retries: number;
  success: boolean;
  error_type: string;
  timestamp: number;
}

export interface InfectionSummary {
  timestamp: number;
  max_deviation: number;
  severity: 'mild' | 'severe';
  anomalies: string[];
  deviations: Record<string, number>;
}

export interface Hypothesis {
  diagnosis: string;
  confidence: number;
  reasoning: string;
}

export interface DiagnosisSummary {
  diagnosis: string;
  confidence: number;
  reasoning: string;
  hypotheses: Hypothesis[];
}

export interface HealingSummary {
  /** null between attempts (the next step has not started yet). */
  action: string | null;
  diagnosis: string | null;
  trigger: Trigger | null;
  attempt: number;
  tried: string[];
}

export interface AgentSummary {
  id: string;
  type: string;
  model: string;
  provider: string;
  mcp_servers: string[];
  source: 'simulated' | 'external';
  /** The agent registered a control URL (directives are pushed to it). */
  control_url?: boolean;
  status: Status;
  since: number;
  executions: number;
  last_seen: number;
  has_baseline: boolean;
  latest: LatestVitals | null;
  infection: InfectionSummary | null;
  diagnosis: DiagnosisSummary | null;
  healing: HealingSummary | null;
  decided_by: string | null;
}

export interface Stats {
  total_agents: number;
  total_executions: number;
  total_infections: number;
  total_healed: number;
  failed_healings: number;
  success_rate: number;
  current_quarantined: number;
  pending_approvals: number;
  runtime_seconds: number;
  started_at: number;
  baselines_learned: number;
  by_status: Partial<Record<Status, number>>;
}

export type HealingKind =
  | 'infection_detected'
  | 'approval_requested'
  | 'approved'
  | 'rejected'
  | 'heal_now'
  | 'healing_attempt'
  | 'healing_applied'
  | 'healing_succeeded'
  | 'healing_failed'
  | 'exhausted'
  | 'quarantined'
  | 'released'
  | 'baseline_accepted'
  | 'feedback';

export interface HealingEntry {
  seq: number;
  timestamp: number;
  agent_id: string;
  kind: HealingKind;
  action?: string;
  diagnosis?: string;
  trigger?: Trigger;
  result?: string;
  actor: string;
  message: string;
}

export interface Pattern {
  diagnosis: string;
  action: string;
  successes: number;
  failures: number;
  success_rate: number;
}

export interface Incident {
  id: string;
  group: string;
  started_at: number;
  ended_at?: number;
  agents: string[];
  anomalies: string[];
  max_deviation: number;
}

export interface StoreStatus {
  kind: string;
  ok: boolean;
  degraded: boolean;
  detail: string;
  /** Writes waiting in the control plane's write-behind batches. */
  queued: number;
  dropped: number;
  /** The resilient store queue (memory + spill file) when the store is wrapped by it. */
  queue?: { queued: number; dropped: number };
}

export interface Overview {
  stats: Stats;
  agents: AgentSummary[];
  healings: HealingEntry[];
  patterns: Pattern[];
  incidents: Incident[];
  store: StoreStatus;
  /** Proposed (docs/API.md): the event-log position the overview reflects. */
  seq?: number;
}

/** One entry of the event log (src/domain/events.ts); only the fields the dashboard reads are typed. */
export interface ImmuneEvent {
  seq: number;
  ts: number;
  agent_id: string;
  type: string;
  actor: string;
  reason: string;
  action?: string;
  /** A diagnosis name, except on infection_detected where it is the ranked hypotheses. */
  diagnosis?: string | { hypotheses: Hypothesis[] };
  trigger?: Trigger;
  detail?: string;
  attempt_id?: string;
  incident?: Incident;
  infection?: InfectionSummary;
  [key: string]: unknown;
}

/** One vitals record as the engine stores it (DESIGN §2). */
export interface Vitals {
  agent_id: string;
  timestamp: number;
  latency_ms: number;
  input_tokens: number;
  output_tokens: number;
  token_count: number;
  cost: number;
  tool_calls: number;
  retries: number;
  success: boolean;
  error_type: string;
  model?: string;
  prompt_hash?: string;
}

export interface BaselineMetric {
  mean: number;
  stddev: number;
  p95: number;
  /** Proposed (docs/API.md): the normal band in the metric's own units. */
  low?: number;
  high?: number;
}

export interface AgentDetail {
  agent: AgentSummary;
  baseline: Record<string, BaselineMetric> | null;
  deviations: Record<string, number>;
  recent_vitals: Vitals[];
  history: ImmuneEvent[];
}

export type Role = 'operator' | 'viewer';

export interface Session {
  role: Role;
  csrf_token: string;
}
