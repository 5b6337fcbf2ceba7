import type { DiagnosisType } from '../../src/domain/types.js';
import type { Vitals } from '../../src/domain/vitals.js';
import { EXPECTED_DIAGNOSIS, INFECTIONS, MAGNITUDE_RANGE, NO_EFFECT, infectionEffect, providerEffect, type Effect, type InfectionKind, type Magnitude } from './faults.js';
import { rng, type Rng } from './rng.js';

/**
 * Seeded generator of labelled fleet traces. Healthy behaviour is meant to be
 * as awkward as production: log-normal latency with a heavy tail (timeouts,
 * cold caches), occasional big tasks that move tokens, tools and latency
 * together, bursts of arrivals that slow responses a little, slow workload
 * drift over hours, very different task rates per agent, legitimate prompt
 * deployments (behaviour within ±15 %) and model changes (latency and cost
 * move several-fold). On top of that: every infection of docs/INFECTIONS.md
 * at blatant and subtle magnitude, and one provider incident.
 */

export interface TraceOptions {
  seed: number;
  agents: number;
  hours: number;
  /** Faults per infection kind and magnitude. */
  faultsPerKind: number;
  /** Epoch seconds of the first sample. */
  start: number;
  /** Prepended to every agent id, so traces of several seeds can be scored together. */
  idPrefix: string;
}

export const DEFAULT_TRACE: TraceOptions = { seed: 1, agents: 80, hours: 8, faultsPerKind: 3, start: 1_767_225_600, idPrefix: '' };

export interface FaultLabel {
  id: string;
  agent_id: string;
  kind: InfectionKind;
  magnitude: Magnitude;
  m: number;
  expected: DiagnosisType;
  /** Timestamps of the first and last faulty sample. */
  start: number;
  end: number;
  samples: number;
  /** Detections up to this time (a few samples after the fault ends) still belong to the fault. */
  graceEnd: number;
}

export interface ChangeLabel {
  agent_id: string;
  kind: 'prompt_deployment' | 'model_change';
  ts: number;
  /** Detections up to this time are charged to the change. */
  watchEnd: number;
}

export interface IncidentLabel {
  model: string;
  provider: string;
  m: number;
  start: number;
  end: number;
  /** Detections of affected agents up to this time are charged to the incident. */
  graceEnd: number;
  agents: string[];
}

export interface AgentSpan {
  agent_id: string;
  first: number;
  last: number;
  samples: number;
}

export interface Labels {
  faults: FaultLabel[];
  changes: ChangeLabel[];
  incident: IncidentLabel;
  spans: AgentSpan[];
}

export interface Trace {
  options: TraceOptions;
  /** Every agent's samples, interleaved and sorted by timestamp. */
  vitals: Vitals[];
  labels: Labels;
}

interface Model {
  name: string;
  provider: string;
  /** Latency relative to a mid-size model. */
  speed: number;
  /** USD per million input / output tokens. */
  priceIn: number;
  priceOut: number;
}

const MODELS: readonly Model[] = [
  { name: 'gpt-4o', provider: 'openai', speed: 1.0, priceIn: 2.5, priceOut: 10 },
  { name: 'gpt-4o-mini', provider: 'openai', speed: 0.6, priceIn: 0.15, priceOut: 0.6 },
  { name: 'claude-sonnet-4', provider: 'anthropic', speed: 1.2, priceIn: 3, priceOut: 15 },
  { name: 'claude-haiku-3.5', provider: 'anthropic', speed: 0.5, priceIn: 0.8, priceOut: 4 },
  { name: 'llama-3.1-70b', provider: 'together', speed: 0.8, priceIn: 0.9, priceOut: 0.9 },
];
/** The provider incident hits this model; it is also the most common one so the incident is fleet-sized. */
const INCIDENT_MODEL = 'claude-sonnet-4';
const MODEL_WEIGHTS = [0.2, 0.15, 0.3, 0.15, 0.2];
const TYPES = ['Research', 'Coding', 'Support', 'DataAnalysis', 'Retrieval', 'Planner', 'Summarizer'];

/** Samples of separation between scheduled episodes on one agent (and after its first sample). */
const WARMUP = 80;
const GAP = 80;
const GRACE_SAMPLES = 10;
const WATCH_SAMPLES = 100;

interface Profile {
  id: string;
  type: string;
  model: Model;
  interval: number;
  latency: number;
  latSigma: number;
  tailP: number;
  input: number;
  inSigma: number;
  output: number;
  outSigma: number;
  tools: number;
  retry: number;
  error: number;
  bigTaskP: number;
  driftAmp: number;
  driftPeriod: number;
  driftPhase: number;
  prompt: string;
}

function pickModel(r: Rng): Model {
  let u = r.next();
  for (let i = 0; i < MODELS.length; i++) {
    u -= MODEL_WEIGHTS[i];
    if (u < 0) return MODELS[i];
  }
  return MODELS[MODELS.length - 1];
}

function profile(i: number, r: Rng, prefix: string): Profile {
  const model = pickModel(r);
  return {
    id: `${prefix}agent-${String(i + 1).padStart(3, '0')}`,
    type: r.pick(TYPES),
    model,
    interval: r.logUniform(5, 60),
    latency: r.logUniform(600, 6000),
    latSigma: r.uniform(0.25, 0.5),
    tailP: r.uniform(0.005, 0.03),
    input: r.logUniform(300, 6000),
    inSigma: r.uniform(0.15, 0.4),
    output: r.logUniform(100, 2000),
    outSigma: r.uniform(0.2, 0.5),
    tools: r.uniform(0.5, 8),
    retry: r.logUniform(0.01, 0.3),
    error: r.logUniform(0.005, 0.05),
    bigTaskP: r.uniform(0.005, 0.03),
    driftAmp: Number(process.env.DA ?? 1) * r.uniform(0.05, 0.25),
    driftPeriod: r.uniform(2, 8) * 3600,
    driftPhase: r.uniform(0, 2 * Math.PI),
    prompt: hash(r),
  };
}

function hash(r: Rng): string {
  let s = '';
  for (let i = 0; i < 4; i++) s += Math.floor(r.next() * 0x10000).toString(16).padStart(4, '0');
  return s;
}

/** Arrival times: exponential gaps at the agent's rate, with bursts (5× the rate for 2–10 minutes) now and then. */
function arrivals(p: Profile, r: Rng, t0: number, t1: number): { ts: number[]; burst: number[] } {
  const ts: number[] = [];
  const burst: number[] = [];
  let t = t0 + r.uniform(0, 120);
  let burstUntil = -1;
  let burstLoad = 1;
  while (t < t1) {
    ts.push(Math.round(t * 1000) / 1000); // millisecond timestamps, so labels and vitals agree exactly
    burst.push(t < burstUntil ? burstLoad : 1);
    if (t >= burstUntil && r.chance(0.004)) {
      burstUntil = t + r.uniform(120, 600);
      burstLoad = process.env.NOB ? 1 : r.uniform(1.0, 1.2);
    }
    t += r.exponential(t < burstUntil ? p.interval / 5 : p.interval);
  }
  return { ts, burst };
}

interface Episode {
  from: number; // sample index, inclusive
  to: number; // exclusive
  effect: Effect;
  label?: FaultLabel;
}

/** Generates one labelled fleet trace. Deterministic for a given `options`. */
export function generateTrace(opts: Partial<TraceOptions> = {}): Trace {
  const o: TraceOptions = { ...DEFAULT_TRACE, ...opts };
  const root = rng(o.seed);
  const t0 = o.start;
  const t1 = t0 + o.hours * 3600;
  const profiles = Array.from({ length: o.agents }, (_, i) => profile(i, root.fork(i), o.idPrefix));

  const incidentStart = t0 + 0.6 * (t1 - t0);
  const incident: IncidentLabel = { model: INCIDENT_MODEL, provider: 'anthropic', m: root.uniform(3, 8), start: incidentStart, end: incidentStart + 20 * 60, graceEnd: incidentStart + 30 * 60, agents: [] };
  const incidentEffect = providerEffect(incident.m);
  const quietFrom = incident.start - 30 * 60;
  const quietTo = incident.graceEnd + 30 * 60;

  const streams = profiles.map((p, i) => {
    const r = root.fork(10_000 + i);
    return { p, r, ...arrivals(p, r, t0, t1) };
  });

  // Faults: every kind × magnitude, `faultsPerKind` times, placed on agents round-robin in a shuffled order.
  const wanted: Array<{ kind: InfectionKind; magnitude: Magnitude }> = [];
  for (const kind of INFECTIONS) for (const magnitude of ['blatant', 'subtle'] as const) for (let k = 0; k < o.faultsPerKind; k++) wanted.push({ kind, magnitude });
  const order = profiles.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(root.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }

  const episodes: Episode[][] = profiles.map(() => []);
  const changes: ChangeLabel[] = [];
  const modelAt: Array<Array<{ from: number; model: Model; speed: number; verbosity: number }>> = profiles.map((p) => [{ from: 0, model: p.model, speed: 1, verbosity: 1 }]);
  const promptAt: Array<Array<{ from: number; prompt: string; factors: [number, number, number, number] }>> = profiles.map((p) => [{ from: 0, prompt: p.prompt, factors: [1, 1, 1, 1] }]);
  const busy: Array<Array<[number, number]>> = profiles.map(() => []);
  const free = (i: number, from: number, to: number) => {
    const ts = streams[i].ts;
    if (from < WARMUP || to > ts.length - 1) return false;
    if (ts[to - 1] >= quietFrom && ts[from] <= quietTo) return false; // keep labels clean around the provider incident
    return busy[i].every(([a, b]) => to + GAP <= a || from >= b + GAP);
  };

  // Legitimate changes first: a quarter of the agents deploy a new prompt, a tenth switch models.
  for (let i = 0; i < profiles.length; i++) {
    const r = streams[i].r;
    const n = streams[i].ts.length;
    if (r.chance(0.25) && n > 3 * WARMUP) {
      for (let tries = 0; tries < 20; tries++) {
        const at = r.int(WARMUP, n - WARMUP);
        if (!free(i, at, at + WATCH_SAMPLES)) continue;
        busy[i].push([at, at + WATCH_SAMPLES]);
        promptAt[i].push({ from: at, prompt: hash(r), factors: [r.uniform(0.85, 1.15), r.uniform(0.85, 1.15), r.uniform(0.85, 1.15), r.uniform(0.85, 1.15)] });
        changes.push({ agent_id: profiles[i].id, kind: 'prompt_deployment', ts: streams[i].ts[at], watchEnd: streams[i].ts[Math.min(n - 1, at + WATCH_SAMPLES)] });
        break;
      }
    }
    if (r.chance(0.1) && n > 3 * WARMUP) {
      for (let tries = 0; tries < 20; tries++) {
        const at = r.int(WARMUP, n - WARMUP);
        if (!free(i, at, at + WATCH_SAMPLES)) continue;
        const others = MODELS.filter((m) => m !== profiles[i].model && m.name !== INCIDENT_MODEL);
        const next = r.pick(others);
        busy[i].push([at, at + WATCH_SAMPLES]);
        modelAt[i].push({ from: at, model: next, speed: r.uniform(0.8, 1.25), verbosity: r.uniform(0.85, 1.15) });
        changes.push({ agent_id: profiles[i].id, kind: 'model_change', ts: streams[i].ts[at], watchEnd: streams[i].ts[Math.min(n - 1, at + WATCH_SAMPLES)] });
        break;
      }
    }
  }
  for (const list of promptAt) list.sort((a, b) => a.from - b.from);
  for (const list of modelAt) list.sort((a, b) => a.from - b.from);

  const faults: FaultLabel[] = [];
  let cursor = 0;
  for (const w of wanted) {
    let placed = false;
    for (let attempt = 0; attempt < order.length * 3 && !placed; attempt++) {
      const i = order[cursor % order.length];
      cursor++;
      const { r, ts } = streams[i];
      const len = r.int(40, 120);
      for (let tries = 0; tries < 10; tries++) {
        const from = r.int(WARMUP, Math.max(WARMUP, ts.length - len - GRACE_SAMPLES - 1));
        const to = from + len;
        if (!free(i, from, to + GRACE_SAMPLES)) continue;
        const [lo, hi] = MAGNITUDE_RANGE[w.magnitude];
        const m = r.uniform(lo, hi);
        const label: FaultLabel = {
          id: `${o.idPrefix}${w.kind}/${w.magnitude}/${faults.length + 1}`,
          agent_id: profiles[i].id,
          kind: w.kind,
          magnitude: w.magnitude,
          m: Math.round(m * 100) / 100,
          expected: EXPECTED_DIAGNOSIS[w.kind],
          start: ts[from],
          end: ts[to - 1],
          samples: len,
          graceEnd: ts[Math.min(ts.length - 1, to - 1 + GRACE_SAMPLES)],
        };
        busy[i].push([from, to + GRACE_SAMPLES]);
        episodes[i].push({ from, to, effect: infectionEffect(w.kind, m), label });
        faults.push(label);
        placed = true;
        break;
      }
    }
    if (!placed) throw new Error(`could not place ${w.kind}/${w.magnitude}: fleet too small or too short`);
  }

  const vitals: Vitals[] = [];
  const spans: AgentSpan[] = [];
  for (let i = 0; i < profiles.length; i++) {
    const { p, r, ts, burst } = streams[i];
    let mi = 0;
    let pi = 0;
    const eps = episodes[i].sort((a, b) => a.from - b.from);
    let ei = 0;
    let faultPrompt = '';
    let inIncident = false;
    for (let k = 0; k < ts.length; k++) {
      while (mi + 1 < modelAt[i].length && modelAt[i][mi + 1].from <= k) mi++;
      while (pi + 1 < promptAt[i].length && promptAt[i][pi + 1].from <= k) pi++;
      while (ei < eps.length && eps[ei].to <= k) ei++;
      const ep = ei < eps.length && eps[ei].from <= k ? eps[ei] : null;
      const mod = modelAt[i][mi];
      const t = ts[k];
      let effect: Effect = ep ? ep.effect : NO_EFFECT;
      if (mod.model.name === incident.model && t >= incident.start && t <= incident.end) {
        effect = incidentEffect;
        if (!inIncident) {
          inIncident = true;
          incident.agents.push(p.id);
        }
      }
      if (ep && ep.from === k) faultPrompt = hash(r);
      const pr = promptAt[i][pi];
      const prompt = ep && effect.newPrompt ? faultPrompt : pr.prompt;
      vitals.push(draw(p, r, t, burst[k], mod, pr.factors, prompt, effect));
    }
    spans.push({ agent_id: p.id, first: ts[0], last: ts[ts.length - 1], samples: ts.length });
  }
  vitals.sort((a, b) => a.timestamp - b.timestamp || (a.agent_id < b.agent_id ? -1 : 1));
  return { options: o, vitals, labels: { faults, changes, incident, spans } };
}

/** One task's vitals: healthy draw, then the active effect. */
function draw(p: Profile, r: Rng, t: number, load: number, mod: { model: Model; speed: number; verbosity: number }, pf: [number, number, number, number], prompt: string, e: Effect): Vitals {
  const drift = Math.exp(p.driftAmp * Math.sin((2 * Math.PI * t) / p.driftPeriod + p.driftPhase));
  const big = !process.env.NOBIG && r.chance(p.bigTaskP) ? r.logUniform(1.5, 3) : 1;
  const retries = r.poisson(e.retryMean(p.retry));
  const failed = r.chance(e.errorP(p.error));
  const tail = r.chance(p.tailP) ? 1.5 + r.exponential(1) : 1;
  const input = Math.round(p.input * pf[1] * drift * big * Math.exp(p.inSigma * r.normal()) * e.input);
  const output = Math.round(p.output * pf[2] * mod.verbosity * Math.pow(drift, 0.8) * big * Math.exp(p.outSigma * r.normal()) * e.output);
  const tools = r.poisson(p.tools * pf[3] * Math.sqrt(drift * big) * e.tools);
  const latency = p.latency * pf[0] * (mod.model.speed / p.model.speed) * mod.speed * drift * load * Math.sqrt(big) * tail * Math.exp(p.latSigma * r.normal()) * (1 + 0.3 * retries) * e.latency;
  const cost = ((input * mod.model.priceIn + output * mod.model.priceOut) / 1e6) * e.cost;
  return {
    agent_id: p.id,
    agent_type: p.type,
    timestamp: t,
    latency_ms: Math.round(latency),
    input_tokens: input,
    output_tokens: output,
    token_count: input + output,
    cost: Math.round(cost * 1e6) / 1e6,
    tool_calls: tools,
    retries,
    success: !failed,
    model: mod.model.name,
    provider: mod.model.provider,
    error_type: failed ? (retries > 0 ? 'rate_limited' : 'tool_error') : '',
    prompt_hash: prompt,
    mcp_servers: [],
    tool_names: [],
  };
}
