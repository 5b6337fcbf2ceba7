import type { AnomalyType, Infection } from '../domain/types.js';
import type { Vitals } from '../domain/vitals.js';
import { effectiveSigma, log1pOf, type Baseline } from './baseline.js';
import type { EngineConfig } from './config.js';
import { CONTINUOUS, NC, NR, RATES, readContinuous, readRates } from './metrics.js';
import { binomialTail, poissonTail, sigmaForTail } from './stats.js';

/**
 * Whether a healing action worked, judged on the fresh samples after it: the
 * metrics that made the agent sick must be back near their baseline. "No new
 * detection within a few samples" is not enough: a subtle fault that took the
 * sentinel ten samples to confirm would pass five quiet-looking ones.
 */
export interface ProbationTally {
  n: number;
  /** Sum of per-sample z (clipped) per continuous metric, then raw sums per rate metric. */
  sums: Float64Array;
}

export function newTally(): ProbationTally {
  return { n: 0, sums: new Float64Array(NC + NR) };
}

const Z_CLIP_HIGH = 4;
const Z_CLIP_LOW = -3;
/** Mean deviation (σ) below which a watched metric counts as back to normal; above FAIL it is still sick. */
const PASS_SIGMA = 1;
const FAIL_SIGMA = 1.75;
/** Probation is extended up to this many times PROBATION_SAMPLES while the evidence is in between. */
const MAX_EXTENSION = 3;
/**
 * A rate fault (retries, errors) is only visible in counts: five quiet samples of an agent that retries
 * 0.8 times per task still happen about one time in ten. So a watched rate must have had the chance to
 * show SICK_EVENTS events at SICK_RATE_FACTOR times its baseline rate before it may pass.
 */
const SICK_RATE_FACTOR = 3;
const SICK_EVENTS = 3;

const scratch = new Float64Array(NC);
const rateScratch = new Float64Array(NR);

export function addSample(t: ProbationTally, b: Baseline, v: Vitals, cfg: EngineConfig): void {
  t.n += 1;
  readContinuous(v, scratch);
  for (let i = 0; i < NC; i++) {
    const z = (log1pOf(scratch[i]) - b.mean[i]) / effectiveSigma(b, i, cfg);
    t.sums[i] += Math.min(Z_CLIP_HIGH, Math.max(Z_CLIP_LOW, z));
  }
  readRates(v, rateScratch);
  for (let j = 0; j < NR; j++) t.sums[NC + j] += rateScratch[j];
}

/** Mean deviation (σ) of each watched metric over the probation samples. */
export function watchedDeviations(t: ProbationTally, b: Baseline, infection: Infection | null, cfg: EngineConfig): Record<string, number> {
  const watched = new Set<AnomalyType>(infection?.anomalies ?? []);
  const all = watched.size === 0 || (watched.size === 1 && watched.has('prompt_change'));
  const out: Record<string, number> = {};
  for (let i = 0; i < NC; i++) if (all || watched.has(CONTINUOUS[i].anomaly)) out[CONTINUOUS[i].key] = t.sums[i] / Math.max(1, t.n);
  for (let j = 0; j < NR; j++) {
    const m = RATES[j];
    if (!all && !watched.has(m.anomaly)) continue;
    const k = Math.round(t.sums[NC + j]);
    out[m.key] =
      m.kind === 'bernoulli'
        ? sigmaForTail(binomialTail(k, t.n, Math.max(b.rate[j], cfg.errorRateFloor)))
        : sigmaForTail(poissonTail(k, t.n * Math.max(b.rate[j], cfg.retryRateFloor)));
  }
  return out;
}

/** The rate a still-sick agent would show: SICK_RATE_FACTOR × its baseline rate (floored). */
function sickRate(b: Baseline, j: number, cfg: EngineConfig): { healthy: number; sick: number } {
  const healthy = Math.max(b.rate[j], RATES[j].kind === 'bernoulli' ? cfg.errorRateFloor : cfg.retryRateFloor);
  return { healthy, sick: Math.min(SICK_RATE_FACTOR * healthy, 0.99) };
}

/** Whether every rate the infection named has had enough samples for a still-sick agent to show it. */
function rateEvidenceEnough(t: ProbationTally, b: Baseline, infection: Infection | null, cfg: EngineConfig): boolean {
  if (!infection) return true;
  for (let j = 0; j < NR; j++) {
    if (infection.anomalies.includes(RATES[j].anomaly) && t.n * sickRate(b, j, cfg).sick < SICK_EVENTS) return false;
  }
  return true;
}

/**
 * At the end of an extended probation a rate is judged by which is likelier, the healthy or the sick
 * rate, rather than by its tail σ: a cured agent with a low baseline rate that happens to retry three
 * times in fifteen tasks is 1.75σ out, yet four times likelier healthy than sick.
 */
function rateLikelierSick(t: ProbationTally, b: Baseline, j: number, cfg: EngineConfig): boolean {
  const k = t.sums[NC + j];
  const { healthy: r0, sick: r1 } = sickRate(b, j, cfg);
  const llr = RATES[j].kind === 'bernoulli' ? k * Math.log(r1 / r0) + (t.n - k) * Math.log((1 - r1) / (1 - r0)) : k * Math.log(r1 / r0) - t.n * (r1 - r0);
  return llr > 0;
}

export type ProbationDecision = { kind: 'wait' } | { kind: 'pass' } | { kind: 'fail'; deviations: Record<string, number> };

/**
 * After PROBATION_SAMPLES samples: pass when every watched metric's mean is
 * within PASS_SIGMA of normal (and a watched rate has had time to show), fail
 * when one is beyond FAIL_SIGMA, otherwise keep watching (up to MAX_EXTENSION×
 * as long; then a continuous metric fails beyond PASS_SIGMA, a rate when the
 * sick rate explains its count better than the healthy one).
 */
export function probationDecision(t: ProbationTally, b: Baseline, infection: Infection | null, cfg: EngineConfig): ProbationDecision {
  if (t.n < cfg.probationSamples) return { kind: 'wait' };
  const dev = watchedDeviations(t, b, infection, cfg);
  const worst = Math.max(0, ...Object.values(dev));
  const last = t.n >= MAX_EXTENSION * cfg.probationSamples;
  if (worst < PASS_SIGMA && (last || rateEvidenceEnough(t, b, infection, cfg))) return { kind: 'pass' };
  // The standard error of a mean of n unit-variance samples is 1/√n: early windows need a clearer answer.
  const failed = worst >= FAIL_SIGMA + 1 / Math.sqrt(t.n) || (last && stillSickAtLast(t, b, dev, cfg));
  if (!failed) return last ? { kind: 'pass' } : { kind: 'wait' };
  const rounded: Record<string, number> = {};
  for (const [k, x] of Object.entries(dev)) rounded[k] = Math.round(x * 100) / 100;
  return { kind: 'fail', deviations: rounded };
}

function stillSickAtLast(t: ProbationTally, b: Baseline, dev: Record<string, number>, cfg: EngineConfig): boolean {
  for (let i = 0; i < NC; i++) if ((dev[CONTINUOUS[i].key] ?? 0) >= PASS_SIGMA) return true;
  for (let j = 0; j < NR; j++) if (RATES[j].key in dev && rateLikelierSick(t, b, j, cfg)) return true;
  return false;
}
