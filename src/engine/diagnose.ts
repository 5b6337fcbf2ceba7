import type { AnomalyType, Diagnosis, DiagnosisType, Hypothesis, Infection } from '../domain/types.js';

/** What the diagnostician looks at besides the infection itself. */
export interface DiagnosisContext {
  /** Recent level relative to normal per metric key (from the sentinel). */
  ratios: Record<string, number>;
  /** Operator corrections for this agent: wrong primary diagnosis → corrected diagnosis → times. */
  corrections?: ReadonlyMap<DiagnosisType, ReadonlyMap<DiagnosisType, number>>;
}

const LABEL: Record<string, string> = {
  latency: 'latency',
  tokens: 'total tokens',
  input_tokens: 'input tokens',
  output_tokens: 'output tokens',
  cost: 'cost per task',
  tools: 'tool calls',
  retry_rate: 'retries per task',
  error_rate: 'error rate',
};

/** Tool calls this far above normal (not yet an anomaly of their own) alongside a latency spike point to a loop rather than a slow tool. */
const LOOP_TOOL_RATIO = 1.75;
const LOOP_TOOL_SIGMA = 2;

function fmt(key: string, inf: Infection, ctx: DiagnosisContext): string {
  const r = ctx.ratios[key];
  const d = inf.deviations[key] ?? 0;
  return r !== undefined ? `${LABEL[key]} at ${r.toFixed(1)}× normal (${d.toFixed(1)}σ)` : `${LABEL[key]} up ${d.toFixed(1)}σ`;
}

/**
 * Ranks root causes for an infection. Pure: the same infection and context
 * always give the same hypotheses. Confidence is the strength of the matching
 * pattern (0–1), not a probability shared between hypotheses.
 */
export function diagnose(inf: Infection, ctx: DiagnosisContext): Diagnosis {
  const has = (a: AnomalyType) => inf.anomalies.includes(a);
  const dev = (k: string) => inf.deviations[k] ?? 0;
  const pc = has('prompt_change');
  const IN = has('input_token_spike');
  const OUT = has('output_token_spike');
  const TOK = has('token_spike');
  const TOOL = has('tool_explosion');
  const LAT = has('latency_spike');
  const ERR = has('error_rate_spike');
  const RET = has('high_retry_rate');
  const COST = has('cost_spike');
  const tokenShape = IN || OUT || TOK;
  // Which side of the context grew more: the listed anomaly first, the deviations when both or neither are listed.
  const inputLed = (IN && !OUT) || ((IN || !OUT) && dev('input_tokens') >= dev('output_tokens'));
  const outputLed = (OUT && !IN) || ((OUT || !IN) && dev('output_tokens') > dev('input_tokens'));
  // Cost that grew well beyond every token count: the price per token changed, not the amount of work.
  // Compared as ratios to normal: cost has a smaller spread than either token count, so its σ runs higher.
  const tokenRatio = Math.max(ctx.ratios.tokens ?? 1, ctx.ratios.input_tokens ?? 1, ctx.ratios.output_tokens ?? 1);
  const costLed = COST && (!tokenShape || (ctx.ratios.cost ?? 1) > 2 * tokenRatio);
  const hyps: Hypothesis[] = [];
  const add = (diagnosis: DiagnosisType, confidence: number, reasoning: string) => hyps.push({ diagnosis, confidence, reasoning });

  if (pc && (IN || TOOL)) {
    const what = [IN ? fmt('input_tokens', inf, ctx) : '', TOOL ? fmt('tools', inf, ctx) : ''].filter(Boolean).join(' and ');
    add('prompt_injection', 0.92, `The system prompt changed and ${what}: injected instructions are likely steering the agent.`);
  } else if (pc && !OUT) {
    add('prompt_injection', 0.8, 'The system prompt changed unexpectedly while the agent misbehaves: possible prompt manipulation.');
  } else if (!pc && IN && TOOL && dev('input_tokens') > dev('output_tokens') + 1) {
    add('prompt_injection', 0.55, `${cap(fmt('input_tokens', inf, ctx))} together with ${fmt('tools', inf, ctx)}: stuffed context may carry injected instructions.`);
  }

  if (pc && OUT && !IN && !TOOL) {
    add('prompt_drift', 0.88, `The system prompt changed and ${fmt('output_tokens', inf, ctx)} while input is normal: the new prompt makes the agent drift.`);
  } else if (pc && !IN && !TOOL) {
    add('prompt_drift', 0.6, 'The system prompt changed and behaviour shifted: the agent has drifted from its validated prompt.');
  } else if (!pc && OUT && !TOOL && outputLed && !costLed) {
    const clear = dev('output_tokens') >= dev('input_tokens') + 1;
    add('prompt_drift', clear ? 0.82 : 0.66, `${cap(fmt('output_tokens', inf, ctx))} while input is ${IN ? 'less affected' : 'normal'}: runaway generation, the agent no longer follows its prompt's limits.`);
  }

  // Each tool call costs time, so a loop often confirms on latency before its (small, noisy) counts do.
  const latencyFromTools = LAT && !TOOL && !tokenShape && ((ctx.ratios.tools ?? 1) >= LOOP_TOOL_RATIO || dev('tools') >= LOOP_TOOL_SIGMA);
  if (TOOL && !pc) {
    add('infinite_loop', 0.88, `${cap(fmt('tools', inf, ctx))} with no prompt change: the agent is likely stuck repeating tool calls.`);
  } else if (latencyFromTools && !pc) {
    add('infinite_loop', 0.8, `${cap(fmt('latency', inf, ctx))} with ${fmt('tools', inf, ctx)}: the extra time is spent repeating tool calls.`);
  } else if (TOOL) {
    add('infinite_loop', 0.4, `${cap(fmt('tools', inf, ctx))}: the agent may be looping on tools.`);
  }

  if (IN && !pc && !TOOL && inputLed) {
    const errs = ERR || RET ? ' alongside failures' : '';
    add('memory_corruption', ERR || RET ? 0.85 : 0.78, `${cap(fmt('input_tokens', inf, ctx))} with the same prompt${errs}: the agent's memory or context is bloated or corrupted.`);
  } else if (!tokenShape && !TOOL && RET && !LAT && !ERR) {
    add('memory_corruption', 0.35, `${cap(fmt('retry_rate', inf, ctx))} without slower responses: corrupted state may make the agent redo work.`);
  }

  if ((LAT || ERR || RET) && !tokenShape && !TOOL && !COST) {
    const parts = [LAT ? fmt('latency', inf, ctx) : '', ERR ? fmt('error_rate', inf, ctx) : '', RET ? fmt('retry_rate', inf, ctx) : ''].filter(Boolean);
    const conf = pc ? 0.5 : LAT && (ERR || RET) ? 0.85 : latencyFromTools ? 0.6 : 0.75;
    add('tool_instability', conf, `${cap(parts.join(', '))} while token use is normal: a tool or MCP server the agent depends on is slow or failing.`);
  } else if (LAT && (ERR || RET)) {
    add('tool_instability', 0.35, `${cap(fmt('latency', inf, ctx))} with failures: tools may be unstable as well.`);
  }

  if (COST) {
    if (costLed || !tokenShape) {
      add('cost_overrun', 0.88, `${cap(fmt('cost', inf, ctx))} while token use moved far less: each task got pricier (expensive model route or paid tools).`);
    } else {
      add('cost_overrun', 0.25, `${cap(fmt('cost', inf, ctx))}, following its token use.`);
    }
  }

  hyps.sort((a, b) => b.confidence - a.confidence);
  applyCorrections(hyps, ctx);
  if (!hyps.some((h) => h.diagnosis === 'unknown')) {
    add('unknown', hyps.length === 0 ? 0.3 : 0.1, `The pattern (${inf.anomalies.join(', ') || 'no anomaly'}) matches no known failure mode.`);
  }
  return { agent_id: inf.agent_id, hypotheses: hyps };
}

/** Operator feedback outranks the pattern: if this primary was corrected before for this agent, promote the correction. */
function applyCorrections(hyps: Hypothesis[], ctx: DiagnosisContext): void {
  const primary = hyps[0]?.diagnosis;
  if (!primary || !ctx.corrections) return;
  const corrected = ctx.corrections.get(primary);
  if (!corrected || corrected.size === 0) return;
  let best: DiagnosisType | undefined;
  let times = 0;
  for (const [d, n] of corrected) if (n > times) [best, times] = [d, n];
  if (!best) return;
  const existing = hyps.findIndex((h) => h.diagnosis === best);
  const reasoning = `An operator corrected ${primary} to ${best} for this agent ${times} time${times === 1 ? '' : 's'}; the same pattern is back.`;
  const promoted: Hypothesis = { diagnosis: best, confidence: Math.min(0.99, hyps[0].confidence + 0.05), reasoning };
  if (existing >= 0) hyps.splice(existing, 1);
  hyps.unshift(promoted);
}

/** Fleet-level hypothesis for a provider incident. */
export function externalCause(agentId: string, group: string, affected: number, active: number, windowSeconds: number): Diagnosis {
  return {
    agent_id: agentId,
    hypotheses: [
      {
        diagnosis: 'external_cause',
        confidence: Math.min(0.97, 0.6 + 0.4 * (affected / Math.max(active, 1))),
        reasoning: `${affected} of ${active} active agents sharing ${group.replace(':', ' ')} turned slow or started failing within ${windowSeconds} s, with nothing else wrong (tokens, tool calls and prompts normal): the provider, not the agents, is the likely cause.`,
      },
    ],
  };
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
