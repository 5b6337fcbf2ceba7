import { ImmuneError } from '../domain/errors.js';
import type { AnomalyType } from '../domain/types.js';
import type { Vitals } from '../domain/vitals.js';
import { effectiveSigma, flooredSigma, log1pOf, RESOLUTION, smallSampleWidening, type Baseline } from './baseline.js';
import type { EngineConfig } from './config.js';
import { CONTINUOUS, COST, ERRORS, INPUT, LATENCY, NC, NR, OUTPUT, RATES, readContinuous, readRates, TOKENS, TOOLS } from './metrics.js';
import { binomialTail, poissonTail, sigmaForTail } from './stats.js';

const RING = 5;
/**
 * Fast paths that confirm in RUN samples without waiting for a CUSUM sized for the agent's worst
 * tail. Both were counted on 728,000 healthy samples of the detection benchmark (seeds 1–3):
 * - one metric ≥ RUN_Z three samples in a row: 0 such runs (≥ 3σ: 1–7 per metric);
 * - two independent groups (latency; tokens/input/output/cost, which move together; tool calls)
 *   ≥ JOINT_Z three samples in a row: 0 (two in a row: 14). A big task moves tokens, tools and
 *   latency at once, but rarely three times running. A sample carrying an unadopted prompt counts
 *   the prompt change as one of the two groups: a deployment that shifts behaviour by ≤ 15 % stays
 *   below 2σ, a new prompt that makes the agent misbehave usually does not.
 */
const RUN = 3;
const RUN_Z = 3.5;
const JOINT_Z = 2;
/**
 * Tool calls are counts: a task makes 0.5–8 of them, and log1p of a small count has a spread so
 * wide (σ ≈ 0.4–0.55) that a loop doubling them is under one σ. A Poisson CUSUM against a 1.5×
 * rate sees it: per task it adds x·ln 1.5 − 0.5·λ, which drifts up for any increase beyond 23 %.
 * One big task adds at most TOOL_LOOP_CLIP. The rate is floored so an agent that rarely calls a
 * tool is not alarmed by a few calls.
 */
const TOOL_LOOP_FACTOR = 1.5;
const LN_TOOL_LOOP_FACTOR = Math.log(TOOL_LOOP_FACTOR);
const TOOL_LOOP_H = 13;
const TOOL_LOOP_CLIP = 2;
const TOOL_RATE_FLOOR = 0.3;
/** Tool calls stop being learned once the tool-count CUSUM holds this share of its h. */
const TOOL_FREEZE = 0.5;
/** A sample at least this slow (σ) is "strained": what most samples of a provider outage look like. */
const STRAIN_Z = 2;
/**
 * A sample is kept out of the baseline only when it is far out (≥ 1.6·threshold) or evidence is
 * close to confirming (fast CUSUM ≥ 75% of h, slow CUSUM ≥ 50% of its h). Excluding every mildly
 * high sample biases the mean and σ low and multiplies false alarms (measured: 3.3 → 0.1 per 100
 * agent-hours on Gaussian traces), while learning a sustained excursion absorbs it: an EWMA of span
 * 50 has moved half-way to a subtle shift after 17 samples, before the slow CUSUM can confirm it.
 */
const SUSPECT_Z = 1.6;
const SUSPECT_CUSUM = 0.75;
const SUSPECT_SLOW = 0.5;
const SLOW_LEARN = 0.5;
/** Target per-sample false-confirmation probability used to size the confirmation run from a metric's tail. */
const TAIL_TARGET = 1e-5;
/** Span of the EWMA that tracks how often a metric exceeds the threshold on its own (its tail weight). */
const TAIL_SPAN = 200;
/**
 * The slow CUSUM finds subtle sustained shifts (1.5–2× normal, about one σ): allowance and decision
 * interval in σ, and the clip that keeps one outlier from contributing more than SLOW_CLIP − SLOW_K.
 */
const SLOW_K = 0.5;
const SLOW_H = 12;
const SLOW_CLIP = 2;
const SLOW_MIN_SAMPLES = 100;
/** Alternative rates of the slow rate CUSUMs, as multiples of the baseline rate. */
const RATE_FREEZE = 0.75;
const SLOW_RATE_FACTOR = 3;

/**
 * Evidence the sentinel has accumulated about one agent since it last looked
 * healthy. Two CUSUMs per metric: a fast one on clipped z-scores, where a
 * blatant spike confirms in 2–4 samples (depending on how far out the
 * sample is compared with how heavy this agent's tail has been) and a single
 * outlier never confirms on its own; and a slow one with a small allowance
 * that accumulates a subtle sustained shift until it is unmistakable.
 */
export interface SentinelState {
  cusum: Float64Array; // fast CUSUM: NC continuous then NR rates
  slow: Float64Array; // slow CUSUM: NC continuous then NR rates
  run: Int32Array; // samples since each metric's CUSUMs last both sat at zero
  tail: Float64Array; // per continuous metric: EWMA of P(z ≥ threshold)
  z: Float64Array; // ring of the last RING z-scores per continuous metric
  joint: Float64Array; // ring of the last RING joint scores (second-largest group z)
  /** Poisson log-likelihood-ratio CUSUM of tool calls per task (a loop multiplies them). */
  toolLoop: number;
  counts: Float64Array; // ring of the last rateWindow raw values per rate metric
  pos: number;
  ratePos: number;
  /** New prompt hash being watched, and how many normal samples it has had. */
  candidatePrompt: string;
  candidateRun: number;
}

export function newSentinelState(cfg: EngineConfig): SentinelState {
  const s: SentinelState = {
    cusum: new Float64Array(NC + NR),
    slow: new Float64Array(NC + NR),
    run: new Int32Array(NC + NR),
    tail: new Float64Array(NC).fill(0.01),
    z: new Float64Array(NC * RING),
    joint: new Float64Array(RING),
    toolLoop: 0,
    counts: new Float64Array(NR * cfg.rateWindow),
    pos: 0,
    ratePos: 0,
    candidatePrompt: '',
    candidateRun: 0,
  };
  return s;
}

/** Forget accumulated evidence (entering probation: judge only fresh samples). Tail estimates are kept. */
export function resetEvidence(s: SentinelState): void {
  s.cusum.fill(0);
  s.slow.fill(0);
  s.run.fill(0);
  s.z.fill(0);
  s.joint.fill(0);
  s.toolLoop = 0;
  s.counts.fill(0);
  s.pos = 0;
  s.ratePos = 0;
  forgetCandidatePrompt(s);
}

/** A sample with the adopted prompt (or none): a new prompt being watched needs its run of normal samples afresh. */
export function forgetCandidatePrompt(s: SentinelState): void {
  s.candidatePrompt = '';
  s.candidateRun = 0;
}

/**
 * What an agent joining a provider incident forgets: everything except the fast evidence on the
 * metrics an outage does not move (tokens, cost, tool calls: fast CUSUMs, their run counters and
 * recent z) and the prompt it is watching. Latency, error and retry evidence is the provider's. The
 * slow CUSUMs and the tool-count CUSUM go too: the baseline learns nothing while the outage lasts
 * (every sample is far out), so a slow drift in the workload builds up in them as if it were a fault
 * (measured: a 20-minute outage let a healthy agent's tool-count CUSUM creep to h). A fault of the
 * agent's own that starts during the outage is blatant enough for the fast CUSUMs in a few samples;
 * resetting them too hid it for as long as the outage lasted.
 */
export function resetBystanderEvidence(s: SentinelState): void {
  s.cusum[LATENCY] = 0;
  s.run[LATENCY] = 0;
  s.z.fill(0, LATENCY * RING, (LATENCY + 1) * RING);
  s.cusum.fill(0, NC);
  s.run.fill(0, NC);
  s.slow.fill(0);
  s.joint.fill(0);
  s.toolLoop = 0;
  s.counts.fill(0);
}

/** True when no metric has more than half the evidence it needs: the agent looks normal right now. */
export function looksNormal(s: SentinelState, cfg: EngineConfig): boolean {
  for (let i = 0; i < NC + NR; i++) {
    const h = i < NC ? cfg.cusumH : cfg.rateCusumH;
    const hs = i < NC ? SLOW_H : cfg.rateCusumH;
    if (s.cusum[i] >= h / 2 || s.slow[i] >= hs / 2) return false;
  }
  return s.toolLoop < TOOL_LOOP_H / 2;
}

/** Scratch for one sample's values, then its z-scores (judge is not re-entrant, so one buffer serves every agent). */
const X = new Float64Array(NC);
/**
 * log1p of the continuous metrics of the sample `judge` saw last, in CONTINUOUS order: `learn` takes
 * them for the same sample instead of working them out again (cost and fractional latencies are not
 * in log1pOf's table of whole numbers). Valid until the next `judge`.
 */
export const SAMPLE_LOGS = new Float64Array(NC);
/** Scratch for one sample's retries and failure (readRates). */
const R = new Float64Array(NR);
const NO_ANOMALIES = Object.freeze([]) as unknown as AnomalyType[];
const NO_VALUES = Object.freeze({}) as Record<string, number>;

/**
 * The sentinel's judgement of one sample. `anomalies`, `deviations` and `ratios` are read-only unless
 * `confirmed`. An unconfirmed verdict is shared and only valid until the next `judge` call: keep its
 * fields, not the object.
 */
export interface Verdict {
  /** Enough evidence for an infection. */
  confirmed: boolean;
  /** Something is elevated: the agent does not look plainly normal right now. */
  suspicious: boolean;
  /**
   * How much of this sample the baseline should learn: 1 normally, 0 when it is
   * far out or evidence is close to confirming, a fraction while only the slow
   * CUSUM is building (the baseline follows a drift but does not absorb a shift).
   */
  learnWeight: number;
  /**
   * The same for the retry and error rates, judged on their own: one retry is
   * a big step for a rate of 0.02, and a rate that keeps learning while its
   * evidence builds absorbs a sustained 5× increase within one fault.
   */
  rateLearnWeight: number;
  /** The same for tool calls, frozen while the tool-count CUSUM builds (a loop would be learned as normal). */
  toolLearnWeight: number;
  /**
   * The sample shows what a provider problem looks like (slow or failing) and nothing of the agent's
   * own: for fleet correlation, only these agents count as hit by an outage.
   */
  providerSignal: boolean;
  /**
   * Evidence of a fault of the agent's own kind is building (tokens, cost or tool calls at half of
   * their h, a joint run beyond latency, or an unadopted prompt). A provider outage moves none of
   * these, so such an agent's slowness or failures are no evidence of an outage.
   */
  ownSignal: boolean;
  /** This very sample is slow (latency ≥ STRAIN_Z) or failed: what most samples look like during a provider outage. */
  strained: boolean;
  /** Every confirmed anomaly is of the kind a provider outage causes (latency, errors, retries). */
  providerOnly: boolean;
  promptChanged: boolean;
  anomalies: AnomalyType[];
  deviations: Record<string, number>;
  /** Recent level relative to baseline mean (e.g. 4.2 = 4.2× normal), per anomalous metric. */
  ratios: Record<string, number>;
  maxDeviation: number;
  /** Longest run of evidence among the anomalous metrics, in samples. */
  evidenceSamples: number;
}

/**
 * When the joint score has been ≥ JOINT_Z for RUN samples, confirms every metric that was ≥ JOINT_Z
 * throughout and returns them as a bit mask (0: no joint run). Kept out of `judge` so the hot path
 * stays small enough for V8 to inline what it calls.
 */
function jointRun(s: SentinelState, slot: number, h: number): number {
  if (!runAbove(s.joint, 0, slot, JOINT_Z)) return 0;
  let metrics = 0;
  for (let i = 0; i < NC; i++) {
    if (!runAbove(s.z, i * RING, slot, JOINT_Z)) continue;
    if (s.cusum[i] < h) s.cusum[i] = h;
    metrics |= 1 << i;
  }
  return metrics;
}

/** True when the last RUN entries of the ring at `base` (ending at `slot`) are all ≥ `min`. */
function runAbove(ring: Float64Array, base: number, slot: number, min: number): boolean {
  for (let r = 0; r < RUN; r++) if (ring[base + ((slot + RING - r) % RING)] < min) return false;
  return true;
}

/**
 * The second-largest of the independent groups' z this sample (latency; the largest of tokens, input,
 * output and cost; tool calls): how far the *second* most elevated group is out. With an unadopted
 * prompt the prompt change is one group already, so it is the largest.
 */
function jointScore(z: Float64Array, promptChanged: boolean): number {
  const lat = z[LATENCY];
  const tok = Math.max(z[TOKENS], z[INPUT], z[OUTPUT], z[COST]);
  const tools = z[TOOLS];
  // Both are worked out on every sample (see CONFIRMED on code that runs only now and then).
  const largest = Math.max(lat, tok, tools);
  const second = lat >= tok ? (tok >= tools ? tok : Math.min(lat, tools)) : lat >= tools ? lat : Math.min(tok, tools);
  return promptChanged ? largest : second;
}

/**
 * Per-task log-likelihood ratios of the error CUSUMs (fast and slow) for a task that failed and for one
 * that did not, each pair for the last baseline error probability p0 it was worked out for. For agents
 * that fail less often than `errorRateFloor`, p0 is the floor and the logarithms are worked out once.
 * For the others p0 moves with every learned sample (64 % of the samples of the replay benchmark's
 * trace), and only the pair the task needs is worked out: two logarithms, not four.
 */
const passLlr = { p0: NaN, fast: 0, slow: 0 };
const failLlr = { p0: NaN, fast: 0, slow: 0 };

/** The alternative hypotheses' error probabilities (fast and slow CUSUM) for baseline p0. */
const p1Of = (p0: number) => Math.min(0.95, Math.max(3 * p0, p0 + 0.25));
const p1SlowOf = (p0: number) => Math.min(0.9, SLOW_RATE_FACTOR * p0);

function setPassLlr(p0: number): void {
  passLlr.p0 = p0;
  passLlr.fast = Math.log((1 - p1Of(p0)) / (1 - p0));
  passLlr.slow = Math.log((1 - p1SlowOf(p0)) / (1 - p0));
}

function setFailLlr(p0: number): void {
  failLlr.p0 = p0;
  failLlr.fast = Math.log(p1Of(p0) / p0);
  failLlr.slow = Math.log(p1SlowOf(p0) / p0);
}

/**
 * The verdict returned for every unconfirmed sample (see Verdict). Its weights are born fractional: a
 * field first set to an integer is stored as one, and the first SLOW_LEARN written into it changes the
 * object's hidden class and throws away every optimised function that reads it.
 */
const QUIET: Verdict = { confirmed: false, suspicious: false, learnWeight: SLOW_LEARN, rateLearnWeight: SLOW_LEARN, toolLearnWeight: SLOW_LEARN, providerSignal: false, ownSignal: false, strained: false, providerOnly: false, promptChanged: false, anomalies: NO_ANOMALIES, deviations: NO_VALUES, ratios: NO_VALUES, maxDeviation: 0, evidenceSamples: 0 };

/** Samples that far out in a row needed before their joint probability, from this metric's own tail, falls below TAIL_TARGET. */
function requiredRun(tail: number): number {
  const k = Math.ceil(Math.log(TAIL_TARGET) / Math.log(Math.max(tail, 1e-9)));
  return k < 2 ? 2 : k > 4 ? 4 : k;
}

/**
 * Flags gathered while judging one sample (bits of an int, so the helpers below can return them).
 *
 * The per-sample code ORs them in on every sample, choosing the bits with a conditional (`f |= cond ?
 * X : 0`) and never inside an `if`. An operator that has never run has no type feedback, and when
 * optimised code first reaches one (the first confirmed infection, the first slow-CUSUM suspect) V8
 * throws the code away and recompiles the whole inlined chain from the engine down, ~30 ms of compiler
 * time each, on a two-core machine that also runs the replay's parse worker. Combined flags are
 * constants for the same reason.
 */
const CONFIRMED = 1;
const SUSPICIOUS = 2;
const SLOW_SUSPECT = 4;
const RATE_SUSPECT = 8;
const PROVIDER_SIGNAL = 16;
const NOT_PROVIDER_ONLY = 32;
const STRAINED = 64;
const OWN_SIGNAL = 128;
/** Confirmed, and not of a kind a provider outage causes. */
const CONFIRMED_NOT_PROVIDER = CONFIRMED | NOT_PROVIDER_ONLY;
/** Confirmed, and evidence of a fault of the agent's own. */
const CONFIRMED_OWN = CONFIRMED | NOT_PROVIDER_ONLY | OWN_SIGNAL;
const SLOW_SUSPECT_OWN = SLOW_SUSPECT | OWN_SIGNAL;
const SUSPICIOUS_OWN = SUSPICIOUS | OWN_SIGNAL;
const LATENCY_ONLY = 1 << LATENCY;

/** Judges one sample against the baseline and updates the evidence. Pure apart from `s`, which it owns. */
export function judge(b: Baseline, s: SentinelState, v: Vitals, cfg: EngineConfig): Verdict {
  const slot = s.pos;
  s.pos = (s.pos + 1) % RING;
  const W = cfg.rateWindow;
  const rslot = s.ratePos;
  s.ratePos = (s.ratePos + 1) % W;
  const promptChanged = v.prompt_hash !== '' && b.prompt_hash !== '' && v.prompt_hash !== b.prompt_hash;
  let f = judgeContinuous(b, s, v, cfg, slot, promptChanged) | judgeRates(b, s, v, cfg, rslot);
  f |= promptChanged ? SUSPICIOUS_OWN : 0;
  const confirmed = (f & CONFIRMED) !== 0;
  const slowSuspect = (f & SLOW_SUSPECT) !== 0;
  const learnWeight = (f & (SUSPICIOUS | CONFIRMED)) !== 0 ? 0 : slowSuspect ? SLOW_LEARN : 1;
  const rateLearnWeight = confirmed || (f & RATE_SUSPECT) !== 0 ? 0 : learnWeight;
  const toolLearnWeight = s.toolLoop >= TOOL_FREEZE * TOOL_LOOP_H ? 0 : learnWeight;
  const ownSignal = (f & OWN_SIGNAL) !== 0;
  const providerSignal = (f & PROVIDER_SIGNAL) !== 0 && !ownSignal;
  const strained = (f & STRAINED) !== 0;
  if (!confirmed) {
    // The common case allocates nothing: one shared verdict, overwritten by the next call.
    const q = QUIET;
    q.suspicious = (f & (SUSPICIOUS | SLOW_SUSPECT)) !== 0;
    q.learnWeight = learnWeight;
    q.rateLearnWeight = rateLearnWeight;
    q.toolLearnWeight = toolLearnWeight;
    q.providerSignal = providerSignal;
    q.ownSignal = ownSignal;
    q.strained = strained;
    q.promptChanged = promptChanged;
    return q;
  }
  return describe(b, s, cfg, slot, rslot, promptChanged, providerSignal, ownSignal, strained, (f & NOT_PROVIDER_ONLY) === 0);
}

/** The continuous metrics' CUSUMs, fast paths and tool-count CUSUM for one sample; returns flags. */
function judgeContinuous(b: Baseline, s: SentinelState, v: Vitals, cfg: EngineConfig, slot: number, promptChanged: boolean): number {
  const T = cfg.thresholdSigma;
  const K = cfg.cusumK;
  const H = cfg.cusumH;
  let f = 0;
  const young = b.n < SLOW_MIN_SAMPLES;
  const widening = smallSampleWidening(b, cfg);
  const floor = cfg.sigmaFloor;
  // The arrays in locals: each is read or written several times per metric.
  const mean = b.mean;
  const variance = b.variance;
  const linear = b.linear;
  const zs = s.z;
  const cusum = s.cusum;
  const slow = s.slow;
  const run = s.run;
  const tail = s.tail;
  readContinuous(v, X);
  for (let i = 0; i < NC; i++) {
    const y = log1pOf(X[i]);
    SAMPLE_LOGS[i] = y;
    const z = (y - mean[i]) / flooredSigma(variance[i], linear[i], RESOLUTION[i], floor, widening);
    zs[i * RING + slot] = z;
    X[i] = z; // the scratch holds this sample's z from here on (jointScore reads it)
    const before = cusum[i];
    // The clip only bites above K + H/4 (k ≤ 4), so the run length is only worked out for samples that far out.
    const step = z <= K + H / 4 ? z : Math.min(z, K + H / requiredRun(tail[i]));
    let c = Math.max(0, before + step - K);
    const cs = young ? 0 : Math.max(0, slow[i] + Math.min(z, SLOW_CLIP) - SLOW_K);
    if (z >= RUN_Z && c < H && runAbove(zs, i * RING, slot, RUN_Z)) c = H;
    cusum[i] = c;
    slow[i] = cs;
    run[i] = c > 0 || cs > 0 ? run[i] + 1 : 0;
    const latency = i === LATENCY;
    // Half-way evidence on latency witnesses an outage; on any other metric it is trouble of the agent's own.
    const halfWay = c >= H / 2 || cs >= SLOW_H / 2;
    f |=
      (z >= SUSPECT_Z * T || c >= SUSPECT_CUSUM * H ? SUSPICIOUS : cs >= SUSPECT_SLOW * SLOW_H ? SLOW_SUSPECT : 0) |
      (c >= H || cs >= SLOW_H ? (latency ? CONFIRMED : CONFIRMED_NOT_PROVIDER) : 0) |
      (halfWay ? (latency ? PROVIDER_SIGNAL : OWN_SIGNAL) : 0) |
      (latency && z >= STRAIN_Z ? STRAINED : 0);
    // The tail is learned from samples that do not continue an excursion.
    if (before < H / 2) tail[i] += (2 / (TAIL_SPAN + 1)) * ((z >= T ? 1 : 0) - tail[i]);
  }

  const lambda = Math.max(b.toolRate, TOOL_RATE_FLOOR);
  // Quasi-Poisson: counts more spread out than Poisson (variance > mean) carry proportionally less evidence.
  const dispersion = Math.max(1, b.toolVar / lambda);
  const toolLoop = young ? 0 : Math.max(0, s.toolLoop + Math.min(TOOL_LOOP_CLIP, (v.tool_calls * LN_TOOL_LOOP_FACTOR - (TOOL_LOOP_FACTOR - 1) * lambda) / dispersion));
  s.toolLoop = toolLoop;
  f |= toolLoop >= TOOL_LOOP_H ? CONFIRMED_OWN : toolLoop >= SUSPECT_SLOW * TOOL_LOOP_H ? SLOW_SUSPECT_OWN : 0;

  // Joint evidence: independent groups elevated together, several samples running.
  s.joint[slot] = jointScore(X, promptChanged);
  const metrics = jointRun(s, slot, H);
  return f | (metrics === 0 ? 0 : metrics === LATENCY_ONLY ? CONFIRMED : CONFIRMED_OWN);
}

/** The retry and error CUSUMs (count statistics) for one sample; returns flags. */
function judgeRates(b: Baseline, s: SentinelState, v: Vitals, cfg: EngineConfig, rslot: number): number {
  const HR = cfg.rateCusumH;
  const W = cfg.rateWindow;
  let f = 0;
  readRates(v, R);
  for (let j = 0; j < NR; j++) {
    const x = R[j];
    s.counts[j * W + rslot] = x;
    let llr: number;
    let llrSlow: number;
    if (j === ERRORS) {
      f |= x > 0 ? STRAINED : 0;
      const p0 = Math.max(b.rate[j], cfg.errorRateFloor);
      const failed = x > 0;
      if (failed) {
        if (p0 !== failLlr.p0) setFailLlr(p0);
      } else if (p0 !== passLlr.p0) setPassLlr(p0);
      const pair = failed ? failLlr : passLlr;
      llr = pair.fast;
      llrSlow = pair.slow;
    } else {
      const l0 = Math.max(b.rate[j], cfg.retryRateFloor);
      const l1 = Math.max(3 * l0, l0 + 0.5);
      const l1s = SLOW_RATE_FACTOR * l0;
      const n = Math.min(x, 10);
      // Most tasks have no retry: the log terms only matter when there is one.
      llr = n === 0 ? l0 - l1 : n * Math.log(l1 / l0) - (l1 - l0);
      llrSlow = n === 0 ? l0 - l1s : n * Math.log(l1s / l0) - (l1s - l0);
    }
    const k = NC + j;
    const c = Math.max(0, s.cusum[k] + llr);
    const cs = Math.max(0, s.slow[k] + llrSlow);
    s.cusum[k] = c;
    s.slow[k] = cs;
    s.run[k] = c > 0 || cs > 0 ? s.run[k] + 1 : 0;
    // Witness for an outage at 3/4 of h, not half: two failures or a few retries close together reach
    // half of h on about 1 % of a healthy agent's samples, and three such agents at once made false
    // provider incidents in the demo fleet. An outage still gets there within a sample or two more.
    f |=
      (c >= SUSPECT_CUSUM * HR || cs >= SUSPECT_CUSUM * HR ? PROVIDER_SIGNAL : 0) |
      (c >= SUSPECT_CUSUM * HR ? SUSPICIOUS : cs >= SUSPECT_SLOW * HR ? SLOW_SUSPECT : 0) |
      (c >= RATE_FREEZE * HR || cs >= RATE_FREEZE * HR ? RATE_SUSPECT : 0) |
      (c >= HR || cs >= HR ? CONFIRMED : 0);
  }
  return f;
}

/** Builds the report for a confirmed sample: deviation per metric is its mean z over the current excursion (≤ 5 samples). */
function describe(b: Baseline, s: SentinelState, cfg: EngineConfig, slot: number, rslot: number, promptChanged: boolean, providerSignal: boolean, ownSignal: boolean, strained: boolean, providerOnly: boolean): Verdict {
  const T = cfg.thresholdSigma;
  const anomalies: AnomalyType[] = [];
  const deviations: Record<string, number> = {};
  const ratios: Record<string, number> = {};
  let maxDeviation = 0;
  let evidenceSamples = 0;
  for (let i = 0; i < NC; i++) {
    const m = Math.min(RING, Math.max(1, s.run[i]));
    let sum = 0;
    let ysum = 0;
    for (let k = 0; k < m; k++) {
      const idx = (slot - k + RING) % RING;
      sum += s.z[i * RING + idx];
    }
    const dev = Math.max(0, sum / m);
    deviations[CONTINUOUS[i].key] = round2(dev);
    // Listed when confirmed, or well on the way and clearly above normal right now.
    const c = s.cusum[i];
    const cs = s.slow[i];
    const elevated = c >= cfg.cusumH || cs >= SLOW_H || (c >= cfg.cusumH / 2 && dev >= T) || (cs >= SLOW_H / 2 && dev >= 1) || (i === TOOLS && s.toolLoop >= TOOL_LOOP_H);
    if (elevated) {
      anomalies.push(CONTINUOUS[i].anomaly);
      maxDeviation = Math.max(maxDeviation, dev);
      evidenceSamples = Math.max(evidenceSamples, s.run[i]);
      // Ratio of the recent level to normal, from the mean log excess.
      ysum = (sum / m) * effectiveSigma(b, i, cfg);
      ratios[CONTINUOUS[i].key] = round2(Math.expm1(b.mean[i] + ysum) / Math.max(Math.expm1(b.mean[i]), 1e-9));
    }
  }
  const W = cfg.rateWindow;
  for (let j = 0; j < NR; j++) {
    const m = RATES[j];
    const n = Math.min(W, Math.max(1, s.run[NC + j]));
    let total = 0;
    for (let k = 0; k < n; k++) total += s.counts[j * W + ((rslot - k + W) % W)];
    const dev =
      m.kind === 'bernoulli'
        ? sigmaForTail(binomialTail(total, n, Math.max(b.rate[j], cfg.errorRateFloor)))
        : sigmaForTail(poissonTail(total, n * Math.max(b.rate[j], cfg.retryRateFloor)));
    deviations[m.key] = round2(dev);
    const c = Math.max(s.cusum[NC + j], s.slow[NC + j]);
    if (c >= cfg.rateCusumH || (c >= cfg.rateCusumH / 2 && dev >= T)) {
      anomalies.push(m.anomaly);
      maxDeviation = Math.max(maxDeviation, dev);
      evidenceSamples = Math.max(evidenceSamples, s.run[NC + j]);
      ratios[m.key] = round2(total / n / Math.max(b.rate[j], m.kind === 'bernoulli' ? cfg.errorRateFloor : cfg.retryRateFloor));
    }
  }
  if (promptChanged || s.candidateRun > 0) {
    anomalies.push('prompt_change');
    deviations.prompt_change = 0;
  }
  return { confirmed: true, suspicious: true, learnWeight: 0, rateLearnWeight: 0, toolLearnWeight: 0, providerSignal, ownSignal, strained, providerOnly, promptChanged, anomalies, deviations, ratios, maxDeviation: round2(maxDeviation), evidenceSamples };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

export interface SentinelSnapshot {
  cusum: number[];
  /** Absent in snapshots written before the slow CUSUM existed (restored as zero evidence). */
  slow?: number[];
  run: number[];
  tail: number[];
  z: number[];
  /** Absent in snapshots written before joint evidence existed (restored as zero). */
  joint?: number[];
  /** Absent before the tool-count CUSUM existed (restored as zero). */
  toolLoop?: number;
  counts: number[];
  pos: number;
  ratePos: number;
  candidatePrompt: string;
  candidateRun: number;
}

export function snapshotSentinel(s: SentinelState): SentinelSnapshot {
  return {
    cusum: Array.from(s.cusum),
    slow: Array.from(s.slow),
    run: Array.from(s.run),
    tail: Array.from(s.tail),
    z: Array.from(s.z),
    joint: Array.from(s.joint),
    toolLoop: s.toolLoop,
    counts: Array.from(s.counts),
    pos: s.pos,
    ratePos: s.ratePos,
    candidatePrompt: s.candidatePrompt,
    candidateRun: s.candidateRun,
  };
}

export function restoreSentinel(x: SentinelSnapshot, cfg: EngineConfig): SentinelState {
  const s = newSentinelState(cfg);
  const copy = (dst: Float64Array | Int32Array, src: number[], name: string) => {
    if (!Array.isArray(src) || src.length !== dst.length || src.some((n) => typeof n !== 'number' || !Number.isFinite(n))) {
      throw new ImmuneError('IMM_ERR_VALIDATION', `sentinel snapshot: '${name}' must be ${dst.length} finite numbers`, { field: name });
    }
    dst.set(src);
  };
  copy(s.cusum, x.cusum, 'cusum');
  copy(s.run, x.run, 'run');
  copy(s.tail, x.tail, 'tail');
  if (x.slow !== undefined) copy(s.slow, x.slow, 'slow');
  copy(s.z, x.z, 'z');
  if (x.joint !== undefined) copy(s.joint, x.joint, 'joint');
  if (x.toolLoop !== undefined) {
    if (typeof x.toolLoop !== 'number' || !Number.isFinite(x.toolLoop)) throw new ImmuneError('IMM_ERR_VALIDATION', "sentinel snapshot: 'toolLoop' must be a finite number", { field: 'toolLoop' });
    s.toolLoop = x.toolLoop;
  }
  copy(s.counts, x.counts, 'counts');
  s.pos = x.pos % RING;
  s.ratePos = x.ratePos % cfg.rateWindow;
  s.candidatePrompt = x.candidatePrompt ?? '';
  s.candidateRun = x.candidateRun ?? 0;
  return s;
}
