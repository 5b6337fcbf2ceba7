import type { DiagnosisType } from '../../src/domain/types.js';

/** The infections of docs/INFECTIONS.md, as the trace generator applies them. */
export const INFECTIONS = [
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
export type InfectionKind = (typeof INFECTIONS)[number];
export type Magnitude = 'blatant' | 'subtle';

/** What the diagnostician should conclude for each infection (docs/INFECTIONS.md). */
export const EXPECTED_DIAGNOSIS: Record<InfectionKind, DiagnosisType> = {
  token_explosion: 'prompt_drift',
  tool_loop: 'infinite_loop',
  latency_spike: 'tool_instability',
  high_retry_rate: 'tool_instability',
  prompt_drift: 'prompt_drift',
  prompt_injection: 'prompt_injection',
  memory_corruption: 'memory_corruption',
  cost_overrun: 'cost_overrun',
  full_meltdown: 'prompt_injection',
};

/** Blatant faults use m ∈ [5, 12], subtle m ∈ [1.5, 2] (docs/INFECTIONS.md). */
export const MAGNITUDE_RANGE: Record<Magnitude, [number, number]> = { blatant: [5, 12], subtle: [1.5, 2] };

/**
 * Multipliers and overrides applied to one task's draw. Continuous factors
 * multiply the healthy value; `retryMean`/`errorP` map the healthy rate to the
 * sick one; cost follows tokens × price unless `cost` says otherwise.
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

/** The signature of infection `kind` at magnitude `m` (the table in docs/INFECTIONS.md, row by row). */
export function infectionEffect(kind: InfectionKind, m: number): Effect {
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
      // Latency × (1 + 0.3·retries) follows from the retries themselves (the generator applies it to every task).
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
