import type { AnomalyType } from '../domain/types.js';
import type { Vitals } from '../domain/vitals.js';
import { effectiveSigma, type Baseline } from './baseline.js';
import type { EngineConfig } from './config.js';
import { CONTINUOUS, LATENCY, NC, NR, RATES } from './metrics.js';
import { binomialTail, poissonTail, sigmaForTail } from './stats.js';

const RING = 5;
/**
 * A sample is kept out of the baseline only when it is far out (≥ 1.6·threshold) or evidence is
 * close to confirming (≥ 75% of h). Excluding every mildly high sample biases the mean and σ low
 * and multiplies false alarms (measured: 3.3 → 0.1 per 100 agent-hours on Gaussian traces).
 */
const SUSPECT_Z = 1.6;
const SUSPECT_CUSUM = 0.75;
/** Target per-sample false-confirmation probability used to size the confirmation run from a metric's tail. */
const TAIL_TARGET = 1e-6;
/** Span of the EWMA that tracks how often a metric exceeds the threshold on its own (its tail weight). */
const TAIL_SPAN = 200;

/**
 * Evidence the sentinel has accumulated about one agent since it last looked
 * healthy. Confirmation uses a CUSUM per metric: a blatant spike confirms in
 * 2–4 samples (depending on how heavy-tailed this agent's metric has been),
 * a subtle sustained shift accumulates until it is unmistakable, and a single
 * outlier never confirms on its own.
 */
export interface SentinelState {
  cusum: Float64Array; // NC continuous then NR rates
  run: Int32Array; // samples since each CUSUM last sat at zero
  tail: Float64Array; // per continuous metric: EWMA of P(z ≥ threshold)
  z: Float64Array; // ring of the last RING z-scores per continuous metric
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
    run: new Int32Array(NC + NR),
    tail: new Float64Array(NC).fill(0.01),
    z: new Float64Array(NC * RING),
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
  s.run.fill(0);
  s.z.fill(0);
  s.counts.fill(0);
  s.pos = 0;
  s.ratePos = 0;
  s.candidatePrompt = '';
  s.candidateRun = 0;
}

/** The sentinel's judgement of one sample. */
export interface Verdict {
  /** Enough evidence for an infection. */
  confirmed: boolean;
  /** Something is elevated: do not teach this sample to the baseline. */
  suspicious: boolean;
  /** The sample shows what a provider problem looks like (slow or failing), for fleet correlation. */
  providerSignal: boolean;
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

function requiredRun(tailRate: number): number {
  const k = Math.ceil(Math.log(TAIL_TARGET) / Math.log(Math.max(tailRate, 1e-9)));
  return Math.min(4, Math.max(2, k));
}

/** Judges one sample against the baseline and updates the evidence. Pure apart from `s`, which it owns. */
export function judge(b: Baseline, s: SentinelState, v: Vitals, cfg: EngineConfig): Verdict {
  const T = cfg.thresholdSigma;
  const K = cfg.cusumK;
  const H = cfg.cusumH;
  let confirmed = false;
  let suspicious = false;
  let providerSignal = false;
  let providerOnly = true;
  const slot = s.pos;
  s.pos = (s.pos + 1) % RING;

  for (let i = 0; i < NC; i++) {
    const y = Math.log1p(CONTINUOUS[i].read(v));
    const z = (y - b.mean[i]) / effectiveSigma(b, i, cfg);
    s.z[i * RING + slot] = z;
    // A run of k clipped samples is needed to reach H, where k grows with this metric's tail weight.
    const clip = K + H / requiredRun(s.tail[i]);
    const c = Math.max(0, s.cusum[i] + Math.min(z, clip) - K);
    s.cusum[i] = c;
    s.run[i] = c > 0 ? s.run[i] + 1 : 0;
    if (z >= SUSPECT_Z * T || c >= SUSPECT_CUSUM * H) suspicious = true;
    if (c >= H) {
      confirmed = true;
      if (i !== LATENCY) providerOnly = false;
    }
    if (i === LATENCY && c >= H / 2) providerSignal = true;
  }

  const W = cfg.rateWindow;
  const rslot = s.ratePos;
  s.ratePos = (s.ratePos + 1) % W;
  for (let j = 0; j < NR; j++) {
    const m = RATES[j];
    const x = m.read(v);
    s.counts[j * W + rslot] = x;
    let llr: number;
    if (m.kind === 'bernoulli') {
      const p0 = Math.max(b.rate[j], cfg.errorRateFloor);
      const p1 = Math.min(0.95, Math.max(3 * p0, p0 + 0.25));
      llr = x > 0 ? Math.log(p1 / p0) : Math.log((1 - p1) / (1 - p0));
    } else {
      const l0 = Math.max(b.rate[j], cfg.retryRateFloor);
      const l1 = Math.max(3 * l0, l0 + 0.5);
      llr = Math.min(x, 10) * Math.log(l1 / l0) - (l1 - l0);
    }
    const k = NC + j;
    const c = Math.max(0, s.cusum[k] + llr);
    s.cusum[k] = c;
    s.run[k] = c > 0 ? s.run[k] + 1 : 0;
    if (c >= cfg.rateCusumH / 2) providerSignal = true;
    if (c >= SUSPECT_CUSUM * cfg.rateCusumH) suspicious = true;
    if (c >= cfg.rateCusumH) confirmed = true;
  }

  const promptChanged = v.prompt_hash !== '' && b.prompt_hash !== '' && v.prompt_hash !== b.prompt_hash;
  if (promptChanged) suspicious = true;

  // Tail weight is learned only from samples that are not part of a sustained excursion.
  if (!confirmed) {
    const a = 2 / (TAIL_SPAN + 1);
    for (let i = 0; i < NC; i++) {
      const exceeded = s.z[i * RING + slot] >= T ? 1 : 0;
      if (s.cusum[i] < H / 2 || exceeded === 0) s.tail[i] += a * (exceeded - s.tail[i]);
    }
  }

  if (!confirmed) {
    return { confirmed, suspicious, providerSignal, providerOnly: false, promptChanged, anomalies: [], deviations: {}, ratios: {}, maxDeviation: 0, evidenceSamples: 0 };
  }
  return describe(b, s, v, cfg, slot, rslot, promptChanged, providerSignal, providerOnly);
}

/** Builds the report for a confirmed sample: deviation per metric is its mean z over the current excursion (≤ 5 samples). */
function describe(b: Baseline, s: SentinelState, v: Vitals, cfg: EngineConfig, slot: number, rslot: number, promptChanged: boolean, providerSignal: boolean, providerOnly: boolean): Verdict {
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
    const elevated = s.cusum[i] >= cfg.cusumH || (s.cusum[i] >= cfg.cusumH / 2 && dev >= T);
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
    if (s.cusum[NC + j] >= cfg.rateCusumH / 2 && (s.cusum[NC + j] >= cfg.rateCusumH || dev >= T)) {
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
  return { confirmed: true, suspicious: true, providerSignal, providerOnly, promptChanged, anomalies, deviations, ratios, maxDeviation: round2(maxDeviation), evidenceSamples };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

export interface SentinelSnapshot {
  cusum: number[];
  run: number[];
  tail: number[];
  z: number[];
  counts: number[];
  pos: number;
  ratePos: number;
  candidatePrompt: string;
  candidateRun: number;
}

export function snapshotSentinel(s: SentinelState): SentinelSnapshot {
  return {
    cusum: Array.from(s.cusum),
    run: Array.from(s.run),
    tail: Array.from(s.tail),
    z: Array.from(s.z),
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
      throw new Error(`sentinel snapshot: '${name}' must be ${dst.length} finite numbers`);
    }
    dst.set(src);
  };
  copy(s.cusum, x.cusum, 'cusum');
  copy(s.run, x.run, 'run');
  copy(s.tail, x.tail, 'tail');
  copy(s.z, x.z, 'z');
  copy(s.counts, x.counts, 'counts');
  s.pos = x.pos % RING;
  s.ratePos = x.ratePos % cfg.rateWindow;
  s.candidatePrompt = x.candidatePrompt ?? '';
  s.candidateRun = x.candidateRun ?? 0;
  return s;
}
