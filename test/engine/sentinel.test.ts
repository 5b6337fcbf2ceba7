import { describe, expect, it } from 'vitest';
import { rng, type Rng } from '../../bench/detect/rng.js';
import type { AnomalyType } from '../../src/domain/types.js';
import type { Vitals } from '../../src/domain/vitals.js';
import { effectiveSigma, learn, newBaseline, type Baseline } from '../../src/engine/baseline.js';
import { engineConfig } from '../../src/engine/config.js';
import { judge, looksNormal, newSentinelState, resetBystanderEvidence, resetEvidence, restoreSentinel, snapshotSentinel, type SentinelState, type Verdict } from '../../src/engine/sentinel.js';

const cfg = engineConfig();

interface Shift {
  latency?: number;
  input?: number;
  output?: number;
  tokens?: number;
  cost?: number;
  tools?: number;
  retries?: number;
  errorP?: number;
  prompt?: string;
}

/** One agent's healthy task stream (log-normal latency and tokens, Poisson tools and retries), with an optional shift. */
function agent(seed: number) {
  const r: Rng = rng(seed);
  let t = 1_700_000_000;
  return (shift: Shift = {}, tail = 0): Vitals => {
    t += 10;
    const input = Math.round(1200 * Math.exp(0.25 * r.normal()) * (shift.input ?? 1));
    const output = Math.round(500 * Math.exp(0.3 * r.normal()) * (shift.output ?? 1));
    const failed = r.chance(shift.errorP ?? 0.02);
    const big = tail > 0 && r.chance(tail) ? 2 + 4 * r.next() : 1;
    return {
      agent_id: 'a1',
      agent_type: 'Research',
      timestamp: t,
      latency_ms: Math.round(1500 * Math.exp(0.35 * r.normal()) * big * (shift.latency ?? 1)),
      input_tokens: input,
      output_tokens: output,
      token_count: Math.round((input + output) * (shift.tokens ?? 1)),
      cost: (((input * 3 + output * 15) / 1e6) * (shift.cost ?? 1)),
      tool_calls: r.poisson(4 * (shift.tools ?? 1)),
      retries: r.poisson(shift.retries ?? 0.05),
      success: !failed,
      model: 'm1',
      provider: 'p1',
      error_type: failed ? 'tool_error' : '',
      prompt_hash: shift.prompt ?? 'prompt-v1',
      mcp_servers: [],
      tool_names: [],
    };
  };
}

/** The engine's healthy path: judge, then learn with the weights the verdict gives. */
function observe(b: Baseline, s: SentinelState, v: Vitals): Verdict {
  const verdict = judge(b, s, v, cfg);
  if (!verdict.confirmed && (verdict.learnWeight > 0 || verdict.rateLearnWeight > 0)) learn(b, v, cfg, cfg.thresholdSigma, verdict.learnWeight, verdict.rateLearnWeight, verdict.toolLearnWeight);
  return verdict;
}

function trained(seed: number, n = 400, tail = 0) {
  const next = agent(seed);
  const b = newBaseline();
  const s = newSentinelState(cfg);
  for (let i = 0; i < cfg.minSamples; i++) learn(b, next({}, tail), cfg);
  for (let i = cfg.minSamples; i < n; i++) observe(b, s, next({}, tail));
  resetEvidence(s);
  return { next, b, s };
}

/** Feeds shifted samples until the sentinel confirms; returns the verdict and how many samples it took. */
function untilConfirmed(seed: number, shift: Shift, max: number): { verdict: Verdict | null; samples: number } {
  const { next, b, s } = trained(seed);
  for (let k = 1; k <= max; k++) {
    const verdict = observe(b, s, next(shift));
    if (verdict.confirmed) return { verdict, samples: k };
  }
  return { verdict: null, samples: max };
}

describe('sentinel: every anomaly type', () => {
  const blatant: Array<[AnomalyType, Shift, string, number]> = [
    ['latency_spike', { latency: 8 }, 'latency', 4],
    ['input_token_spike', { input: 8 }, 'input_tokens', 4],
    ['output_token_spike', { output: 8 }, 'output_tokens', 4],
    ['token_spike', { tokens: 8 }, 'tokens', 4],
    ['cost_spike', { cost: 8 }, 'cost', 4],
    ['tool_explosion', { tools: 8 }, 'tools', 4],
    ['high_retry_rate', { retries: 2 }, 'retry_rate', 8],
    ['error_rate_spike', { errorP: 0.6 }, 'error_rate', 14],
  ];
  it.each(blatant)('%s: a blatant change is confirmed within a few samples and reported in σ', (anomaly, shift, key, within) => {
    for (const seed of [1, 2, 3]) {
      const { verdict, samples } = untilConfirmed(seed, shift, 30);
      expect(verdict, `seed ${seed}`).not.toBeNull();
      expect(samples).toBeLessThanOrEqual(within);
      expect(verdict!.anomalies).toContain(anomaly);
      expect(verdict!.deviations[key]).toBeGreaterThanOrEqual(cfg.thresholdSigma);
      expect(verdict!.maxDeviation).toBeGreaterThanOrEqual(verdict!.deviations[key]);
      expect(verdict!.evidenceSamples).toBeGreaterThanOrEqual(2);
    }
  });

  it('prompt_change: a new prompt hash is listed when the agent misbehaves under it', () => {
    const { verdict } = untilConfirmed(4, { prompt: 'prompt-v2', output: 6 }, 10);
    expect(verdict?.promptChanged).toBe(true);
    expect(verdict?.anomalies).toEqual(expect.arrayContaining(['prompt_change', 'output_token_spike']));
  });

  it('a new prompt alone (normal behaviour) is suspicious but never confirmed', () => {
    const { next, b, s } = trained(5);
    for (let k = 0; k < 200; k++) {
      const v = observe(b, s, next({ prompt: 'prompt-v2' }));
      expect(v.confirmed).toBe(false);
      expect(v.suspicious).toBe(true);
      expect(v.learnWeight).toBe(0);
    }
  });

  it('reports a ratio to normal for each anomalous metric', () => {
    const { verdict } = untilConfirmed(6, { latency: 6 }, 10);
    expect(verdict!.ratios.latency).toBeGreaterThan(3);
    expect(verdict!.ratios.latency).toBeLessThan(12);
  });

  it('a provider-type anomaly (latency, errors) is marked providerOnly; tokens are not', () => {
    expect(untilConfirmed(7, { latency: 8 }, 10).verdict?.providerOnly).toBe(true);
    expect(untilConfirmed(7, { errorP: 0.6 }, 20).verdict?.providerOnly).toBe(true);
    expect(untilConfirmed(7, { input: 8 }, 10).verdict?.providerOnly).toBe(false);
  });
});

describe('sentinel: beyond the seed', () => {
  it('confirms a subtle sustained shift (1.8× input tokens) with the slow CUSUM', () => {
    let found = 0;
    for (const seed of [11, 12, 13, 14, 15]) {
      const { verdict } = untilConfirmed(seed, { input: 1.8 }, 80);
      if (verdict?.anomalies.includes('input_token_spike')) found++;
    }
    expect(found).toBeGreaterThanOrEqual(4);
  });

  it('does not absorb a sustained anomaly into the baseline while evidence builds', () => {
    const { next, b, s } = trained(21);
    const before = b.mean[2];
    let confirmedAfter = 0;
    for (let k = 1; k <= 80; k++) {
      if (observe(b, s, next({ input: 1.8 })).confirmed) {
        confirmedAfter = k;
        break;
      }
    }
    expect(confirmedAfter).toBeGreaterThan(0);
    // A plain EWMA (span 50) would have moved most of the way to log(1.8) ≈ 0.59 by now.
    expect(b.mean[2] - before).toBeLessThan(0.5 * Math.log(1.8));
  });

  it('one outlier never confirms, however far out, and the agent stays healthy', () => {
    const { next, b, s } = trained(31);
    for (let round = 0; round < 40; round++) {
      const huge = next({ latency: 1000, input: 1000, output: 1000, tools: 50, cost: 1000 });
      expect(observe(b, s, huge).confirmed).toBe(false);
      for (let k = 0; k < 25; k++) expect(observe(b, s, next()).confirmed).toBe(false);
    }
  });

  it('a heavy-tailed latency stream (3% of tasks 2–6× slower) raises no alarm over 5,000 tasks', () => {
    const { next, b, s } = trained(41, 400, 0.03);
    let alarms = 0;
    for (let k = 0; k < 5000; k++) if (observe(b, s, next({}, 0.03)).confirmed) alarms++;
    expect(alarms).toBe(0);
  });

  it('judges errors as counts: one failure on a spotless agent is no alarm, a run of failures is', () => {
    const { next, b, s } = trained(51);
    expect(observe(b, s, next({ errorP: 1 })).confirmed).toBe(false);
    for (let k = 0; k < 30; k++) observe(b, s, next({ errorP: 0 }));
    let confirmed: Verdict | null = null;
    for (let k = 0; k < 10 && !confirmed; k++) {
      const v = observe(b, s, next({ errorP: 1 }));
      if (v.confirmed) confirmed = v;
    }
    expect(confirmed?.anomalies).toContain('error_rate_spike');
    // σ-equivalent of the binomial tail of the recent window, not σ of a 0/1 stream
    expect(confirmed!.deviations.error_rate).toBeGreaterThan(3);
    expect(confirmed!.deviations.error_rate).toBeLessThanOrEqual(10);
  });

  it('looksNormal is false while a CUSUM is half-way to confirming and true after resetEvidence', () => {
    const { next, b, s } = trained(61);
    observe(b, s, next({ latency: 10 }));
    observe(b, s, next({ latency: 10 }));
    expect(looksNormal(s, cfg)).toBe(false);
    resetEvidence(s);
    expect(looksNormal(s, cfg)).toBe(true);
  });
});

/** A sample whose continuous metrics sit exactly `z` σ above this baseline (0 where not given); tools, retries and errors normal. */
function at(b: Baseline, template: Vitals, z: { latency?: number; input?: number; output?: number; tools?: number }, prompt = template.prompt_hash): Vitals {
  const value = (i: number, k = 0) => Math.expm1(b.mean[i] + k * effectiveSigma(b, i, cfg));
  const input = Math.round(value(2, z.input));
  const output = Math.round(value(3, z.output));
  // Tokens and cost follow input and output (they are one correlated group, as in real traffic).
  return { ...template, latency_ms: Math.round(value(0, z.latency)), input_tokens: input, output_tokens: output, token_count: input + output, cost: (input * 3 + output * 15) / 1e6, tool_calls: Math.round(value(5, z.tools)), retries: 0, success: true, error_type: '', prompt_hash: prompt };
}

describe('sentinel: fast paths (joint evidence and runs)', () => {
  it('one metric beyond 3.5σ three samples in a row confirms on the third, even on a heavy-tailed agent', () => {
    const { next, b, s } = trained(81, 400, 0.03);
    const template = next();
    expect(observe(b, s, at(b, template, { latency: 3.6 })).confirmed).toBe(false);
    expect(observe(b, s, at(b, template, { latency: 3.6 })).confirmed).toBe(false);
    const third = observe(b, s, at(b, template, { latency: 3.6 }));
    expect(third.confirmed).toBe(true);
    expect(third.anomalies).toEqual(['latency_spike']);
  });

  it('two independent groups at 2.5σ together for three samples confirm; either group alone does not', () => {
    const run = (z: { latency?: number; input?: number; output?: number }) => {
      const { next, b, s } = trained(82);
      const template = next();
      return [1, 2, 3].map(() => ({ ...observe(b, s, at(b, template, z)) }));
    };
    const both = run({ latency: 2.5, input: 2.5 });
    expect(both.map((v) => v.confirmed)).toEqual([false, false, true]);
    expect(both[2].anomalies).toEqual(expect.arrayContaining(['latency_spike', 'input_token_spike']));
    expect(both[2].providerOnly).toBe(false);
    expect(run({ latency: 2.5 }).some((v) => v.confirmed)).toBe(false);
    // input, output, total tokens and cost all up is still one group: a big task, not two kinds of evidence
    expect(run({ input: 2.5, output: 2.5 }).some((v) => v.confirmed)).toBe(false);
  });

  it('an unadopted prompt counts as one group: a new prompt with input at 2.5σ for three samples confirms', () => {
    const { next, b, s } = trained(83);
    const template = next();
    const verdicts = [1, 2, 3].map(() => ({ ...observe(b, s, at(b, template, { input: 2.5 }, 'prompt-v2')) }));
    expect(verdicts.map((v) => v.confirmed)).toEqual([false, false, true]);
    expect(verdicts[2].anomalies).toEqual(expect.arrayContaining(['input_token_spike', 'prompt_change']));
  });

  it('a joint run is broken by one normal sample', () => {
    const { next, b, s } = trained(84);
    const template = next();
    observe(b, s, at(b, template, { latency: 2.5, input: 2.5 }));
    observe(b, s, at(b, template, { latency: 2.5, input: 2.5 }));
    observe(b, s, at(b, template, {}));
    expect(observe(b, s, at(b, template, { latency: 2.5, input: 2.5 })).confirmed).toBe(false);
  });
});

describe('sentinel: tool calls as counts', () => {
  it('catches a loop that multiplies tool calls by 1.75 while every other metric is normal', () => {
    let found = 0;
    for (const seed of [91, 92, 93, 94, 95]) {
      const { verdict } = untilConfirmed(seed, { tools: 1.75 }, 60);
      if (verdict?.anomalies.includes('tool_explosion')) found++;
    }
    expect(found).toBeGreaterThanOrEqual(4);
  });

  it('stops learning tool calls while the count evidence builds, so the loop is not absorbed', () => {
    const { next, b, s } = trained(96);
    const before = b.linear[5];
    for (let k = 0; k < 60; k++) if (observe(b, s, next({ tools: 1.75 })).confirmed) break;
    // An EWMA of span 50 would have moved ~70 % of the way from 4 to 7 calls in 60 samples.
    expect(b.linear[5]).toBeLessThan(before + 0.5 * 0.75 * before);
  });

  it('raises no alarm on healthy Poisson tool counts over 5,000 tasks', () => {
    const { next, b, s } = trained(97);
    let alarms = 0;
    for (let k = 0; k < 5000; k++) if (observe(b, s, next()).confirmed) alarms++;
    expect(alarms).toBe(0);
  });
});

describe('sentinel snapshots', () => {
  it('round-trip exactly and judge the next samples identically', () => {
    const { next, b, s } = trained(71);
    for (let k = 0; k < 3; k++) observe(b, s, next({ latency: 1.5 }));
    const copy = restoreSentinel(JSON.parse(JSON.stringify(snapshotSentinel(s))), cfg);
    expect(snapshotSentinel(copy)).toEqual(snapshotSentinel(s));
    const b2 = structuredClone(b);
    const v = next({ latency: 9 });
    // Spread: an unconfirmed verdict is one shared object, so compare copies of each.
    expect({ ...judge(b2, copy, v, cfg) }).toEqual({ ...judge(b, s, v, cfg) });
  });

  it('restores snapshots written before the slow CUSUM existed (no slow evidence)', () => {
    const { s } = trained(72);
    const { slow: _slow, ...old } = snapshotSentinel(s);
    expect(Array.from(restoreSentinel(old, cfg).slow).every((x) => x === 0)).toBe(true);
  });

  it('restores snapshots written before joint evidence and the tool-count CUSUM existed (no such evidence)', () => {
    const { next, b, s } = trained(74);
    for (let k = 0; k < 3; k++) observe(b, s, next({ tools: 3, latency: 3 }));
    const { joint: _joint, toolLoop: _toolLoop, ...old } = snapshotSentinel(s);
    const restored = restoreSentinel(old, cfg);
    expect(Array.from(restored.joint).every((x) => x === 0)).toBe(true);
    expect(restored.toolLoop).toBe(0);
    expect(() => restoreSentinel({ ...snapshotSentinel(s), toolLoop: Number.POSITIVE_INFINITY }, cfg)).toThrow(/'toolLoop'/);
  });

  it('rejects a malformed snapshot with IMM_ERR_VALIDATION naming the field', () => {
    const good = snapshotSentinel(newSentinelState(cfg));
    expect(() => restoreSentinel({ ...good, cusum: [1] }, cfg)).toThrow(/'cusum'/);
    expect(() => restoreSentinel({ ...good, tail: good.tail.map(() => Number.NaN) }, cfg)).toThrow(expect.objectContaining({ code: 'IMM_ERR_VALIDATION' }));
  });

  it('keeps per-agent detection state small: the numeric state of baseline + sentinel is ≤ 1.5 KB (DESIGN: ≤ 2 KB per agent)', () => {
    const { b, s } = trained(73);
    const bytes = (o: object) => Object.values(o).reduce((n: number, x) => n + (ArrayBuffer.isView(x) ? x.byteLength : 0), 0);
    expect(bytes(b) + bytes(s)).toBeLessThanOrEqual(1536);
  });
});

describe('sentinel: what it tells the fleet correlator', () => {
  it('a slow, failing agent with nothing else wrong is a witness for a provider outage', () => {
    const { next, b, s } = trained(91);
    const verdicts = [1, 2, 3, 4].map(() => ({ ...observe(b, s, next({ latency: 5, errorP: 0.4 })) }));
    expect(verdicts.some((v) => v.providerSignal)).toBe(true);
    expect(verdicts.every((v) => !v.ownSignal)).toBe(true);
    const confirmed = verdicts.find((v) => v.confirmed);
    expect(confirmed?.providerOnly).toBe(true);
  });

  it('an agent slowed down by a fault of its own kind is no witness: runaway output, a tool loop, a new prompt', () => {
    const shifts: Shift[] = [
      { latency: 3, output: 5 },
      { latency: 2.5, tools: 4 },
      { latency: 3, prompt: 'prompt-v2' },
    ];
    for (const shift of shifts) {
      const { next, b, s } = trained(92);
      const verdicts = [1, 2, 3, 4, 5, 6].map(() => ({ ...observe(b, s, next(shift)) }));
      const own = verdicts.findIndex((v) => v.ownSignal);
      expect(own, JSON.stringify(shift)).toBeGreaterThanOrEqual(0);
      // from the moment its own evidence shows, it no longer counts as hit by the provider
      expect(verdicts.slice(own).every((v) => !v.providerSignal), JSON.stringify(shift)).toBe(true);
    }
  });

  it('a witness needs more than two failures close together: rate evidence counts from 3/4 of h', () => {
    const { next, b, s } = trained(93);
    const two = [next({ errorP: 1 }), next({ errorP: 1 })].map((v) => ({ ...observe(b, s, v) }));
    expect(two.map((v) => v.providerSignal)).toEqual([false, false]);
    expect(observe(b, s, next({ errorP: 1 })).providerSignal).toBe(true);
  });

  it('joining an incident forgets the provider-type and slow evidence but keeps fast token evidence', () => {
    const { next, b, s } = trained(94);
    observe(b, s, next({ latency: 5, output: 4, errorP: 1 }));
    const before = { latency: s.cusum[0], output: s.cusum[3] };
    expect(before.latency).toBeGreaterThan(0);
    expect(before.output).toBeGreaterThan(0);
    s.slow.fill(3);
    s.toolLoop = 5;
    resetBystanderEvidence(s);
    expect(s.cusum[0]).toBe(0);
    expect(Array.from(s.cusum.subarray(6))).toEqual([0, 0]);
    expect(Array.from(s.slow)).toEqual(new Array(8).fill(0));
    expect(s.toolLoop).toBe(0);
    expect(s.cusum[3]).toBe(before.output);
  });
});
