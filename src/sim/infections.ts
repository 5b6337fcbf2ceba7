import type { HealingAction } from '../domain/types.js';
import type { Random } from './random.js';

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

/** One task's measurements before the infection bends them. */
export interface TaskSample {
  latency_ms: number;
  input_tokens: number;
  output_tokens: number;
  tool_calls: number;
  retries: number;
  error: boolean;
  /** Multiplier on cost beyond tokens × price. */
  cost_factor: number;
  prompt_hash: string;
}

export interface ActiveInfection {
  type: InfectionType;
  /** m in docs/INFECTIONS.md: blatant 5–12, subtle 1.5–2. */
  magnitude: number;
  /** Prompt hash the infection switched to (prompt-changing infections). */
  prompt_hash: string;
}

/** Applies an infection's signature to a healthy sample (docs/INFECTIONS.md, same formulas as the benchmark generator). */
export function applyInfection(s: TaskSample, inf: ActiveInfection, rnd: Random, baseErrorRate: number, baseRetryRate: number): TaskSample {
  const m = inf.magnitude * rnd.uniform(0.85, 1.15);
  const out = { ...s };
  switch (inf.type) {
    case 'token_explosion':
      out.output_tokens = Math.round(s.output_tokens * m);
      out.latency_ms = s.latency_ms * (1 + 0.6 * (m - 1));
      break;
    case 'tool_loop':
      out.tool_calls = Math.max(1, Math.round(Math.max(1, s.tool_calls) * m));
      out.latency_ms = s.latency_ms * (1 + 0.5 * (m - 1));
      out.input_tokens = Math.round(s.input_tokens * (1 + 0.25 * (m - 1)));
      break;
    case 'latency_spike':
      out.latency_ms = s.latency_ms * m;
      break;
    case 'high_retry_rate':
      out.retries = rnd.poisson(Math.max(baseRetryRate, 0.1) * m);
      out.error = rnd.next() < Math.min(0.9, Math.max(baseErrorRate, 0.02) * m);
      out.latency_ms = s.latency_ms * (1 + 0.3 * out.retries);
      break;
    case 'prompt_drift':
      out.prompt_hash = inf.prompt_hash;
      out.output_tokens = Math.round(s.output_tokens * m);
      out.latency_ms = s.latency_ms * (1 + 0.5 * (m - 1));
      break;
    case 'prompt_injection':
      out.prompt_hash = inf.prompt_hash;
      out.input_tokens = Math.round(s.input_tokens * m);
      out.tool_calls = Math.round(Math.max(1, s.tool_calls) * (1 + 0.5 * (m - 1)));
      break;
    case 'memory_corruption':
      out.input_tokens = Math.round(s.input_tokens * m);
      out.error = rnd.next() < Math.min(0.9, Math.max(baseErrorRate, 0.02) * m);
      break;
    case 'cost_overrun':
      out.cost_factor = s.cost_factor * m;
      out.input_tokens = Math.round(s.input_tokens * 1.1);
      out.output_tokens = Math.round(s.output_tokens * 1.1);
      break;
    case 'full_meltdown':
      out.prompt_hash = inf.prompt_hash;
      out.input_tokens = Math.round(s.input_tokens * m);
      out.output_tokens = Math.round(s.output_tokens * m);
      out.tool_calls = Math.round(Math.max(1, s.tool_calls) * m);
      out.latency_ms = s.latency_ms * m;
      out.error = rnd.next() < 0.5;
      out.retries = rnd.poisson(Math.max(baseRetryRate, 0.1) * m);
      break;
  }
  return out;
}
