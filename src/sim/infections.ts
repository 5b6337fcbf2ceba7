import type { DiagnosisType, HealingAction } from '../domain/types.js';

export const INFECTION_TYPES = [
  'token_explosion',
  'tool_loop',
  'latency_spike',
  'high_retry_rate',
  'prompt_drift',
  'prompt_injection',
  'memory_corruption',
  'cost_overrun',
  'full_meltdown',
] as const;
export type InfectionType = (typeof INFECTION_TYPES)[number];

/** The actions that cure each infection (docs/INFECTIONS.md); any other action leaves the agent sick. */
export const CURES: Readonly<Record<InfectionType, readonly HealingAction[]>> = Object.freeze({
  token_explosion: ['reduce_autonomy', 'reset_agent'],
  tool_loop: ['reduce_autonomy', 'reset_agent'],
  latency_spike: ['reduce_autonomy', 'reset_agent'],
  high_retry_rate: ['reset_agent'],
  prompt_drift: ['rollback_prompt', 'reset_agent'],
  prompt_injection: ['reset_memory', 'rollback_prompt', 'reset_agent'],
  memory_corruption: ['reset_memory', 'reset_agent'],
  cost_overrun: ['revoke_tools', 'reset_agent'],
  full_meltdown: ['reset_agent'],
});

export interface ActiveInfection {
  type: InfectionType;
  /** m in docs/INFECTIONS.md: blatant 5–12, subtle 1.5–2. */
  magnitude: number;
  /** Prompt hash the infection switched to (prompt-changing infections). */
  prompt_hash: string;
}

/**
 * How an infection bends one task (the table in docs/INFECTIONS.md, row by
 * row). Continuous factors multiply the healthy value; `retryMean`/`errorP`
 * map the healthy rate to the sick one; cost follows tokens × price unless
 * `cost` says otherwise. The detection benchmark's trace generator uses the
 * same function, so the benchmark measures what the demo shows.
 */
export interface Effect {
  latency: number;
  input: number;
  output: number;
  tools: number;
  cost: number;
  retryMean: (base: number) => number;
  errorP: (base: number) => number;
  /** The fault ships its own system prompt (one new hash per episode). */
  newPrompt: boolean;
}

export const NO_EFFECT: Readonly<Effect> = Object.freeze({
  latency: 1,
  input: 1,
  output: 1,
  tools: 1,
  cost: 1,
  retryMean: (b: number) => b,
  errorP: (p: number) => p,
  newPrompt: false,
});

/** What the diagnostician should conclude for each infection (docs/INFECTIONS.md). */
export const EXPECTED_DIAGNOSIS: Readonly<Record<InfectionType, DiagnosisType>> = Object.freeze({
  token_explosion: 'prompt_drift',
  tool_loop: 'infinite_loop',
  latency_spike: 'tool_instability',
  high_retry_rate: 'tool_instability',
  prompt_drift: 'prompt_drift',
  prompt_injection: 'prompt_injection',
  memory_corruption: 'memory_corruption',
  cost_overrun: 'cost_overrun',
  full_meltdown: 'prompt_injection',
});

/** The signature of infection `kind` at magnitude `m`. */
export function infectionEffect(kind: InfectionType, m: number): Effect {
  const e: Effect = { ...NO_EFFECT };
  switch (kind) {
    case 'token_explosion':
      e.output = m;
      e.latency = 1 + 0.6 * (m - 1);
      break;
    case 'tool_loop':
      e.tools = m;
      e.latency = 1 + 0.5 * (m - 1);
      e.input = 1 + 0.25 * (m - 1);
      break;
    case 'latency_spike':
      e.latency = m;
      break;
    case 'high_retry_rate':
      // Latency × (1 + 0.3·retries) follows from the retries themselves (applied to every task).
      e.retryMean = (b) => Math.max(b, 0.1) * m;
      e.errorP = (p) => Math.min(0.9, p * m);
      break;
    case 'prompt_drift':
      e.newPrompt = true;
      e.output = m;
      e.latency = 1 + 0.5 * (m - 1);
      break;
    case 'prompt_injection':
      e.newPrompt = true;
      e.input = m;
      e.tools = 1 + 0.5 * (m - 1);
      break;
    case 'memory_corruption':
      e.input = m;
      e.errorP = (p) => Math.min(0.9, p * m);
      break;
    case 'cost_overrun':
      e.cost = m;
      e.input = 1.1;
      e.output = 1.1;
      break;
    case 'full_meltdown':
      e.newPrompt = true;
      e.input = m;
      e.output = m;
      e.tools = m;
      e.latency = m;
      e.errorP = () => 0.5;
      e.retryMean = (b) => b * m;
      break;
  }
  return e;
}

/** A provider incident on one model: latency × m (3–8) and P(error) + 0.3 for every agent on it. */
export function providerEffect(m: number): Effect {
  return { ...NO_EFFECT, latency: m, errorP: (p) => Math.min(1, p + 0.3) };
}
