import { createHash } from 'node:crypto';
import type { HealingAction } from '../domain/types.js';
import type { VitalsInput } from '../domain/vitals.js';
import { CURES, infectionEffect, NO_EFFECT, type ActiveInfection, type InfectionType } from './infections.js';
import type { Random } from './random.js';

/** USD per 1K tokens, as in the seed. */
export const MODEL_COST_PER_1K: Readonly<Record<string, number>> = Object.freeze({
  'GPT-5': 0.03,
  'GPT-4o': 0.005,
  'Claude Sonnet 4': 0.003,
  'Claude Opus 4': 0.015,
  'Claude Sonnet 3.5': 0.003,
  'Gemini 2.0': 0.00125,
});

export const PROVIDER_OF: Readonly<Record<string, string>> = Object.freeze({
  'GPT-5': 'openai',
  'GPT-4o': 'openai',
  'Claude Sonnet 4': 'anthropic',
  'Claude Opus 4': 'anthropic',
  'Claude Sonnet 3.5': 'anthropic',
  'Gemini 2.0': 'google',
});

export const AGENT_TYPES = ['Research', 'Data', 'Analytics', 'Coordinator'] as const;
export type AgentType = (typeof AGENT_TYPES)[number];

/** Normal behaviour of one simulated agent (medians and log-space spreads). */
export interface Profile {
  latency_ms: number;
  tokens: number;
  input_share: number;
  tool_calls: number;
  latency_sigma: number;
  token_sigma: number;
  error_rate: number;
  retry_rate: number;
}

export function hashPrompt(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/**
 * An in-process agent that executes one task per tick and reports vitals.
 * Healing actions change its state; only the actions in CURES for its
 * infection make it well again (docs/INFECTIONS.md).
 */
export class SimAgent {
  infection: ActiveInfection | null = null;
  readonly originalPrompt: string;
  promptHash: string;
  executions = 0;

  constructor(
    readonly id: string,
    readonly agent_type: AgentType,
    readonly model: string,
    readonly mcp_servers: readonly string[],
    readonly profile: Profile,
  ) {
    this.originalPrompt = hashPrompt(`system-prompt-v1-${id}`);
    this.promptHash = this.originalPrompt;
  }

  get provider(): string {
    return PROVIDER_OF[this.model] ?? '';
  }

  infect(type: InfectionType, magnitude: number, rnd: Random): void {
    this.infection = { type, magnitude, prompt_hash: hashPrompt(`tampered-${this.id}-${rnd.next()}`) };
  }

  /** One task: a healthy sample from the profile, bent by the infection if any (docs/INFECTIONS.md). */
  execute(now: number, rnd: Random): VitalsInput {
    const p = this.profile;
    const inf = this.infection;
    // Each task's magnitude wobbles around the episode's, as real faults do.
    const e = inf ? infectionEffect(inf.type, inf.magnitude * rnd.uniform(0.85, 1.15)) : NO_EFFECT;
    // Occasional slow tail (timeouts, cold caches): real latency is heavy-tailed.
    const tail = rnd.next() < 0.01 ? rnd.uniform(2, 5) : 1;
    const total = p.tokens * rnd.logNormal(p.token_sigma);
    const share = Math.min(0.9, Math.max(0.2, p.input_share + rnd.uniform(-0.05, 0.05)));
    const input = Math.round(total * share * e.input);
    const output = Math.round(total * (1 - share) * e.output);
    const tools = e.tools === 1 ? rnd.poisson(p.tool_calls) : Math.round(Math.max(1, rnd.poisson(p.tool_calls)) * e.tools);
    const retries = rnd.poisson(e.retryMean(p.retry_rate));
    const error = rnd.next() < e.errorP(p.error_rate);
    const latency = p.latency_ms * rnd.logNormal(p.latency_sigma) * tail * e.latency * (1 + 0.3 * retries);
    const tokens = input + output;
    this.executions += 1;
    return {
      agent_id: this.id,
      agent_type: this.agent_type,
      timestamp: now,
      latency_ms: Math.round(latency),
      input_tokens: input,
      output_tokens: output,
      token_count: tokens,
      cost: Math.round(((tokens * (MODEL_COST_PER_1K[this.model] ?? 0.005)) / 1000) * e.cost * 1e6) / 1e6,
      tool_calls: tools,
      retries,
      success: !error,
      model: this.model,
      provider: this.provider,
      error_type: error ? rnd.pick(['timeout', 'rate_limit', 'tool_error', 'content_filter']) : '',
      prompt_hash: inf && e.newPrompt ? inf.prompt_hash : this.promptHash,
      mcp_servers: [...this.mcp_servers],
    };
  }

  /** Applies a healing action; returns whether it cured the infection (the engine learns this only from fresh vitals). */
  apply(action: HealingAction): { detail: string; cured: boolean } {
    const inf = this.infection;
    if (action === 'rollback_prompt' || action === 'reset_agent') this.promptHash = this.originalPrompt;
    const cured = inf !== null && CURES[inf.type].includes(action);
    if (cured) this.infection = null;
    return { detail: DETAIL[action], cured };
  }
}

const DETAIL: Record<HealingAction, string> = {
  reset_memory: 'memory cleared',
  rollback_prompt: 'prompt rolled back to v1',
  reduce_autonomy: 'autonomy reduced (lower temperature, fewer tools per task)',
  revoke_tools: 'tool access revoked',
  reset_agent: 'agent reset to a clean instance',
};
