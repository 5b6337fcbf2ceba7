import { describe, expect, it } from 'vitest';
import { EXPECTED_DIAGNOSIS, INFECTIONS, infectionEffect, NO_EFFECT, type Effect, type InfectionKind } from '../../bench/detect/faults.js';
import { rng } from '../../bench/detect/rng.js';
import type { AnomalyType, DiagnosisType, Infection } from '../../src/domain/types.js';
import type { Vitals } from '../../src/domain/vitals.js';
import { learn, newBaseline } from '../../src/engine/baseline.js';
import { engineConfig } from '../../src/engine/config.js';
import { diagnose, externalCause } from '../../src/engine/diagnose.js';
import { judge, newSentinelState, type Verdict } from '../../src/engine/sentinel.js';

const cfg = engineConfig();

/** A healthy agent whose tasks can carry an infection's signature (docs/INFECTIONS.md, via the benchmark's fault table). */
function agent(seed: number) {
  const r = rng(seed);
  let t = 1_700_000_000;
  return (e: Effect = NO_EFFECT): Vitals => {
    t += 10;
    const input = Math.round(2000 * Math.exp(0.25 * r.normal()) * e.input);
    const output = Math.round(600 * Math.exp(0.3 * r.normal()) * e.output);
    const retries = r.poisson(e.retryMean(0.05));
    const failed = r.chance(e.errorP(0.02));
    return {
      agent_id: 'a1',
      agent_type: 'Research',
      timestamp: t,
      latency_ms: Math.round(1800 * Math.exp(0.35 * r.normal()) * (1 + 0.3 * retries) * e.latency),
      input_tokens: input,
      output_tokens: output,
      token_count: input + output,
      cost: ((input * 3 + output * 15) / 1e6) * e.cost,
      tool_calls: r.poisson(4 * e.tools),
      retries,
      success: !failed,
      model: 'm1',
      provider: 'p1',
      error_type: failed ? 'tool_error' : '',
      prompt_hash: e.newPrompt ? 'injected' : 'prompt-v1',
      mcp_servers: [],
      tool_names: [],
    };
  };
}

/** Runs the sentinel over a healthy history and then the infection, and returns the first confirmed verdict. */
function detect(kind: InfectionKind, m: number, seed: number): Verdict | null {
  const next = agent(seed);
  const b = newBaseline();
  const s = newSentinelState(cfg);
  for (let i = 0; i < 300; i++) {
    const v = next();
    const verdict = i < cfg.minSamples ? null : judge(b, s, v, cfg);
    if (!verdict || verdict.learnWeight > 0 || verdict.rateLearnWeight > 0) learn(b, v, cfg, cfg.thresholdSigma, verdict?.learnWeight ?? 1, verdict?.rateLearnWeight ?? 1, verdict?.toolLearnWeight ?? 1);
  }
  const effect = infectionEffect(kind, m);
  for (let i = 0; i < 150; i++) {
    const v = next(effect);
    const verdict = judge(b, s, v, cfg);
    if (verdict.confirmed) return verdict;
    if (verdict.learnWeight > 0 || verdict.rateLearnWeight > 0) learn(b, v, cfg, cfg.thresholdSigma, verdict.learnWeight, verdict.rateLearnWeight, verdict.toolLearnWeight);
  }
  return null;
}

function infection(anomalies: AnomalyType[], deviations: Record<string, number>): Infection {
  return { agent_id: 'a1', timestamp: 0, max_deviation: Math.max(0, ...Object.values(deviations)), anomalies, deviations, severity: 'mild' };
}

describe('diagnose: each infection of docs/INFECTIONS.md gets its expected diagnosis', () => {
  it.each(INFECTIONS.map((k) => [k, EXPECTED_DIAGNOSIS[k]] as const))('%s → %s (blatant, several seeds)', (kind, expected) => {
    for (const seed of [1, 2, 3]) {
      const verdict = detect(kind, 8, seed);
      expect(verdict, `seed ${seed}: not detected`).not.toBeNull();
      const inf = infection(verdict!.anomalies, verdict!.deviations);
      const dx = diagnose(inf, { ratios: verdict!.ratios });
      expect(dx.hypotheses[0].diagnosis, `seed ${seed}: ${verdict!.anomalies.join(',')}`).toBe(expected);
    }
  });
});

describe('diagnose: ranked hypotheses an operator can read', () => {
  it('ranks by confidence, ends with unknown, and every reasoning is one readable sentence', () => {
    const dx = diagnose(infection(['latency_spike', 'error_rate_spike'], { latency: 4, error_rate: 5 }), { ratios: { latency: 3.2, error_rate: 12 } });
    const conf = dx.hypotheses.map((h) => h.confidence);
    expect([...conf].sort((a, b) => b - a)).toEqual(conf);
    expect(dx.hypotheses[0].diagnosis).toBe('tool_instability');
    expect(dx.hypotheses[0].reasoning).toMatch(/^Latency at 3\.2× normal \(4\.0σ\), error rate at 12\.0× normal \(5\.0σ\) while token use is normal/);
    expect(dx.hypotheses.at(-1)?.diagnosis).toBe('unknown');
    for (const h of dx.hypotheses) {
      expect(h.reasoning).toMatch(/^[A-Z].*[.:]/);
      expect(h.confidence).toBeGreaterThan(0);
      expect(h.confidence).toBeLessThanOrEqual(1);
    }
  });

  it('cost that follows tokens is not a cost overrun; cost that outgrows tokens is', () => {
    const follows = diagnose(infection(['output_token_spike', 'cost_spike'], { output_tokens: 6, cost: 7 }), { ratios: { output_tokens: 6, cost: 4.5 } });
    expect(follows.hypotheses[0].diagnosis).toBe('prompt_drift');
    expect(follows.hypotheses.find((h) => h.diagnosis === 'cost_overrun')!.confidence).toBeLessThan(0.5);
    const pricier = diagnose(infection(['cost_spike'], { cost: 6, tokens: 0.4 }), { ratios: { cost: 6 } });
    expect(pricier.hypotheses[0].diagnosis).toBe('cost_overrun');
  });

  it('an input-led context growth with the same prompt is memory corruption; with a new prompt it is injection', () => {
    const same = diagnose(infection(['input_token_spike', 'error_rate_spike'], { input_tokens: 5, output_tokens: 0.3, error_rate: 4 }), { ratios: {} });
    expect(same.hypotheses[0].diagnosis).toBe('memory_corruption');
    const changed = diagnose(infection(['input_token_spike', 'prompt_change'], { input_tokens: 5, prompt_change: 0 }), { ratios: {} });
    expect(changed.hypotheses[0].diagnosis).toBe('prompt_injection');
  });

  it('tool calls alone with the same prompt is an infinite loop', () => {
    expect(diagnose(infection(['tool_explosion'], { tools: 6 }), { ratios: { tools: 5 } }).hypotheses[0].diagnosis).toBe('infinite_loop');
  });

  it('a latency spike with tool calls up (not yet an anomaly) is a loop; with tool calls normal it is a slow tool', () => {
    const loop = diagnose(infection(['latency_spike'], { latency: 3, tools: 2.3 }), { ratios: { latency: 2 } });
    expect(loop.hypotheses.map((h) => h.diagnosis).slice(0, 2)).toEqual(['infinite_loop', 'tool_instability']);
    expect(loop.hypotheses[0].reasoning).toMatch(/tool calls up 2\.3σ/);
    const slowTool = diagnose(infection(['latency_spike'], { latency: 3, tools: 0.4 }), { ratios: { latency: 2 } });
    expect(slowTool.hypotheses[0].diagnosis).toBe('tool_instability');
  });

  it('a pattern that matches nothing is unknown, with low confidence', () => {
    const dx = diagnose(infection([], {}), { ratios: {} });
    expect(dx.hypotheses).toHaveLength(1);
    expect(dx.hypotheses[0]).toMatchObject({ diagnosis: 'unknown', confidence: 0.3 });
  });

  it('operator corrections outrank the pattern for that agent', () => {
    const corrections = new Map<DiagnosisType, Map<DiagnosisType, number>>([['infinite_loop', new Map([['prompt_injection', 2]])]]);
    const dx = diagnose(infection(['tool_explosion'], { tools: 6 }), { ratios: {}, corrections });
    expect(dx.hypotheses[0].diagnosis).toBe('prompt_injection');
    expect(dx.hypotheses[0].reasoning).toContain('corrected infinite_loop to prompt_injection');
    expect(dx.hypotheses.filter((h) => h.diagnosis === 'prompt_injection')).toHaveLength(1);
  });

  it('is pure: the same infection gives the same diagnosis', () => {
    const inf = infection(['latency_spike'], { latency: 5 });
    expect(diagnose(inf, { ratios: {} })).toEqual(diagnose(inf, { ratios: {} }));
  });
});

describe('externalCause', () => {
  it('blames the provider, with confidence growing with the share of peers affected', () => {
    const few = externalCause('fleet:model:x', 'model:x', 3, 10, 120);
    const most = externalCause('fleet:model:x', 'model:x', 9, 10, 120);
    expect(few.hypotheses[0].diagnosis).toBe('external_cause');
    expect(most.hypotheses[0].confidence).toBeGreaterThan(few.hypotheses[0].confidence);
    expect(most.hypotheses[0].confidence).toBeLessThanOrEqual(0.97);
    expect(few.hypotheses[0].reasoning).toBe('3 of 10 active agents sharing model x turned slow or started failing within 120 s, with nothing else wrong (tokens, tool calls and prompts normal): the provider, not the agents, is the likely cause.');
  });
});
