import type { Detection } from '../../src/control/replay.js';
import type { Vitals } from '../../src/domain/vitals.js';
import { INFECTIONS, type InfectionKind, type Magnitude } from './faults.js';
import type { FaultLabel, Labels } from './generator.js';

/** What the benchmark reports for one detector on one trace. */
export interface Score {
  faults: number;
  detected: number;
  recall: { all: number; blatant: number; subtle: number };
  /** Per infection kind: fraction of its blatant and subtle faults detected. */
  recallByKind: Record<InfectionKind, Record<Magnitude, number>>;
  /** Individual detections that belong to a fault, over all individual detections. */
  precision: number;
  individualDetections: number;
  falseQuarantines: number;
  healthyAgentHours: number;
  falsePer100AgentHours: number;
  incident: { affectedAgents: number; individualQuarantines: number; fleetIncidents: number; fleetDelaySeconds: number | null };
  legitChanges: Record<'prompt_deployment' | 'model_change', { changes: number; alarmed: number }>;
  /** Samples from the first faulty sample to the detecting one (1 = caught on the first faulty sample). */
  delay: { median: number; medianBlatant: number; medianSubtle: number; p90: number };
  /** Median delay per infection kind and magnitude (NaN when none of them was detected). */
  delayByKind: Record<InfectionKind, Record<Magnitude, number>>;
  diagnosis: { accuracy: number; correct: number; of: number; wrong: Record<string, number> };
}

/** Scores detections (replay output lines) against the trace's labels. */
export function score(detections: readonly Detection[], labels: Labels, vitals: readonly Vitals[]): Score {
  const times = new Map<string, number[]>();
  for (const v of vitals) {
    let t = times.get(v.agent_id);
    if (!t) times.set(v.agent_id, (t = []));
    t.push(v.timestamp);
  }
  const faultsOf = new Map<string, FaultLabel[]>();
  for (const f of labels.faults) {
    const list = faultsOf.get(f.agent_id) ?? [];
    list.push(f);
    faultsOf.set(f.agent_id, list);
  }
  const incidentAgents = new Set(labels.incident.agents);
  const first = new Map<FaultLabel, Detection>();
  let individual = 0;
  let matched = 0;
  let falseQ = 0;
  let incidentQ = 0;
  let fleet = 0;
  let fleetFirst: number | null = null;
  const alarmed = new Set<string>();
  for (const d of detections) {
    if (d.agent_id.startsWith('fleet:')) {
      fleet++;
      if (d.timestamp >= labels.incident.start && d.timestamp <= labels.incident.graceEnd && fleetFirst === null) fleetFirst = d.timestamp;
      continue;
    }
    individual++;
    const f = (faultsOf.get(d.agent_id) ?? []).find((x) => d.timestamp >= x.start && d.timestamp <= x.graceEnd);
    if (f) {
      matched++;
      if (!first.has(f)) first.set(f, d);
      continue;
    }
    falseQ++;
    if (incidentAgents.has(d.agent_id) && d.timestamp >= labels.incident.start && d.timestamp <= labels.incident.graceEnd) incidentQ++;
    for (const c of labels.changes) if (c.agent_id === d.agent_id && d.timestamp >= c.ts && d.timestamp <= c.watchEnd) alarmed.add(`${c.kind}:${c.agent_id}:${c.ts}`);
  }

  const delays: Record<Magnitude, number[]> = { blatant: [], subtle: [] };
  let correct = 0;
  const wrong: Record<string, number> = {};
  const hit: Record<Magnitude, number> = { blatant: 0, subtle: 0 };
  const total: Record<Magnitude, number> = { blatant: 0, subtle: 0 };
  const byKind = Object.fromEntries(INFECTIONS.map((k) => [k, { blatant: 0, subtle: 0 }])) as Record<InfectionKind, Record<Magnitude, number>>;
  const kindDelays = Object.fromEntries(INFECTIONS.map((k) => [k, { blatant: [] as number[], subtle: [] as number[] }])) as Record<InfectionKind, Record<Magnitude, number[]>>;
  const kindTotal = Object.fromEntries(INFECTIONS.map((k) => [k, { blatant: 0, subtle: 0 }])) as Record<InfectionKind, Record<Magnitude, number>>;
  for (const f of labels.faults) {
    total[f.magnitude]++;
    kindTotal[f.kind][f.magnitude]++;
    const d = first.get(f);
    if (!d) continue;
    hit[f.magnitude]++;
    byKind[f.kind][f.magnitude]++;
    const t = times.get(f.agent_id) ?? [];
    const delay = countBetween(t, f.start, d.timestamp);
    delays[f.magnitude].push(delay);
    kindDelays[f.kind][f.magnitude].push(delay);
    if (d.diagnosis === f.expected) correct++;
    else wrong[`${f.kind}→${d.diagnosis}`] = (wrong[`${f.kind}→${d.diagnosis}`] ?? 0) + 1;
  }
  for (const k of INFECTIONS) for (const m of ['blatant', 'subtle'] as const) byKind[k][m] = ratio(byKind[k][m], kindTotal[k][m]);

  let hours = 0;
  for (const s of labels.spans) hours += (s.last - s.first) / 3600;
  for (const f of labels.faults) hours -= (f.graceEnd - f.start) / 3600;

  const legit = { prompt_deployment: { changes: 0, alarmed: 0 }, model_change: { changes: 0, alarmed: 0 } };
  for (const c of labels.changes) {
    legit[c.kind].changes++;
    if (alarmed.has(`${c.kind}:${c.agent_id}:${c.ts}`)) legit[c.kind].alarmed++;
  }
  const all = [...delays.blatant, ...delays.subtle];
  const detected = hit.blatant + hit.subtle;
  return {
    faults: labels.faults.length,
    detected,
    recall: { all: ratio(detected, labels.faults.length), blatant: ratio(hit.blatant, total.blatant), subtle: ratio(hit.subtle, total.subtle) },
    recallByKind: byKind,
    precision: ratio(matched, individual),
    individualDetections: individual,
    falseQuarantines: falseQ,
    healthyAgentHours: Math.round(hours * 10) / 10,
    falsePer100AgentHours: Math.round((falseQ / hours) * 100 * 100) / 100,
    incident: { affectedAgents: labels.incident.agents.length, individualQuarantines: incidentQ, fleetIncidents: fleet, fleetDelaySeconds: fleetFirst === null ? null : Math.round(fleetFirst - labels.incident.start) },
    legitChanges: legit,
    delay: { median: median(all), medianBlatant: median(delays.blatant), medianSubtle: median(delays.subtle), p90: quantile(all, 0.9) },
    delayByKind: Object.fromEntries(INFECTIONS.map((k) => [k, { blatant: median(kindDelays[k].blatant), subtle: median(kindDelays[k].subtle) }])) as Record<InfectionKind, Record<Magnitude, number>>,
    diagnosis: { accuracy: ratio(correct, detected), correct, of: detected, wrong },
  };
}

/** Samples of one agent with start ≤ ts ≤ end (timestamps sorted). */
function countBetween(ts: number[], start: number, end: number): number {
  let n = 0;
  for (const t of ts) if (t >= start && t <= end) n++;
  return n;
}

function ratio(a: number, b: number): number {
  return b === 0 ? 1 : Math.round((a / b) * 1000) / 1000;
}

function median(xs: number[]): number {
  return quantile(xs, 0.5);
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** The detections that matched no fault, and the faults nobody detected: what to look at when tuning. */
export function explain(detections: readonly Detection[], labels: Labels): { falseDetections: Detection[]; missed: FaultLabel[] } {
  const falseDetections: Detection[] = [];
  const caught = new Set<FaultLabel>();
  for (const d of detections) {
    if (d.agent_id.startsWith('fleet:')) continue;
    const f = labels.faults.find((x) => x.agent_id === d.agent_id && d.timestamp >= x.start && d.timestamp <= x.graceEnd);
    if (f) caught.add(f);
    else falseDetections.push(d);
  }
  return { falseDetections, missed: labels.faults.filter((f) => !caught.has(f)) };
}
