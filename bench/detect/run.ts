/**
 * Detection benchmark: generates seeded, labelled fleet traces, runs the
 * engine (through the same Replayer as `immune replay`) and the seed
 * prototype's algorithm on them, and scores both.
 *
 *   npm run bench:detect                      # 3 seeds × 80 agents × 8 h, table on stdout
 *   npm run bench:detect -- --seeds 1,2 --agents 40 --hours 4 --json out.json
 */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { Replayer, type Detection } from '../../src/control/replay.js';
import type { Vitals } from '../../src/domain/vitals.js';
import { DEFAULT_ENGINE_CONFIG, type EngineConfig } from '../../src/engine/config.js';
import { INFECTIONS } from './faults.js';
import { DEFAULT_TRACE, generateTrace, type Labels } from './generator.js';
import { explain, score, type Score } from './scorer.js';
import { SeedReference } from './seed-reference.js';

export interface BenchResult {
  options: { seeds: number[]; agents: number; hours: number; faultsPerKind: number };
  samples: number;
  engine: Score;
  seed: Score;
  /** The engine's false detections and missed faults (for tuning; not part of the JSON result). */
  engineExplained: ReturnType<typeof explain>;
}

/** Runs both detectors on the traces of every seed and scores them together. */
export function runBenchmark(seeds: number[], agents: number, hours: number, faultsPerKind: number, engine: Partial<EngineConfig> = {}): BenchResult {
  const labels: Labels = { faults: [], changes: [], incident: { model: '', provider: '', m: 0, start: 0, end: 0, graceEnd: 0, agents: [] }, spans: [] };
  const vitals: Vitals[] = [];
  const engineOut: Detection[] = [];
  const seedOut: Detection[] = [];
  const incidents: Labels['incident'][] = [];
  for (const seed of seeds) {
    const trace = generateTrace({ seed, agents, hours, faultsPerKind, idPrefix: seeds.length > 1 ? `s${seed}/` : '' });
    const replay = new Replayer({ engine });
    for (const v of trace.vitals) for (const d of replay.line(JSON.stringify(v))) engineOut.push(d);
    const ref = new SeedReference();
    for (const v of trace.vitals) {
      const d = ref.observe(v);
      if (d) seedOut.push(d);
    }
    labels.faults.push(...trace.labels.faults);
    labels.changes.push(...trace.labels.changes);
    labels.spans.push(...trace.labels.spans);
    incidents.push(trace.labels.incident);
    for (const v of trace.vitals) vitals.push(v);
  }
  // Every seed's incident happens at the same event time (the traces share a clock): score them as one.
  const inc = incidents[0];
  labels.incident = { ...inc, agents: incidents.flatMap((i) => i.agents), m: Math.round(Math.max(...incidents.map((i) => i.m)) * 100) / 100 };
  return {
    options: { seeds, agents, hours, faultsPerKind },
    samples: vitals.length,
    engine: score(engineOut, labels, vitals),
    seed: score(seedOut, labels, vitals),
    engineExplained: explain(engineOut, labels),
  };
}

const TARGETS = {
  blatant: 0.95,
  subtle: 0.8,
  falsePer100AgentHours: 0.5,
  incidentQuarantines: 0,
  delay: 3,
  diagnosis: 0.9,
};

/** The result as a Markdown table (what docs/BENCHMARKS.md shows). */
export function toMarkdown(r: BenchResult): string {
  const e = r.engine;
  const s = r.seed;
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const ok = (pass: boolean) => (pass ? '✅' : '❌');
  const rows: string[] = [
    '| metric | target | engine | seed reference |',
    '|---|---|---|---|',
    `| recall, blatant faults | ≥ 95 % | ${pct(e.recall.blatant)} ${ok(e.recall.blatant >= TARGETS.blatant)} | ${pct(s.recall.blatant)} |`,
    `| recall, subtle faults | ≥ 80 % | ${pct(e.recall.subtle)} ${ok(e.recall.subtle >= TARGETS.subtle)} | ${pct(s.recall.subtle)} |`,
    `| precision (individual detections that are real faults) | — | ${pct(e.precision)} | ${pct(s.precision)} |`,
    `| false quarantines per 100 healthy agent-hours | ≤ 0.5 | ${e.falsePer100AgentHours} (${e.falseQuarantines} in ${e.healthyAgentHours} h) ${ok(e.falsePer100AgentHours <= TARGETS.falsePer100AgentHours)} | ${s.falsePer100AgentHours} (${s.falseQuarantines}) |`,
    `| individual quarantines caused by the provider incident (${e.incident.affectedAgents} agents) | 0 | ${e.incident.individualQuarantines} ${ok(e.incident.individualQuarantines === 0)} | ${s.incident.individualQuarantines} |`,
    `| fleet incidents reported (delay after incident start) | 1 per trace | ${e.incident.fleetIncidents}${e.incident.fleetDelaySeconds === null ? '' : ` (${e.incident.fleetDelaySeconds} s)`} | ${s.incident.fleetIncidents} |`,
    `| legitimate prompt deployments alarmed | — | ${e.legitChanges.prompt_deployment.alarmed} of ${e.legitChanges.prompt_deployment.changes} | ${s.legitChanges.prompt_deployment.alarmed} of ${s.legitChanges.prompt_deployment.changes} |`,
    `| legitimate model changes alarmed | — | ${e.legitChanges.model_change.alarmed} of ${e.legitChanges.model_change.changes} | ${s.legitChanges.model_change.alarmed} of ${s.legitChanges.model_change.changes} |`,
    `| median detection delay, samples (blatant / subtle) | ≤ 3 | ${e.delay.median} (${e.delay.medianBlatant} / ${e.delay.medianSubtle}) ${ok(e.delay.median <= TARGETS.delay)} | ${s.delay.median} (${s.delay.medianBlatant} / ${s.delay.medianSubtle}) |`,
    `| diagnosis accuracy (first detection of each fault) | ≥ 90 % | ${pct(e.diagnosis.accuracy)} (${e.diagnosis.correct}/${e.diagnosis.of}) ${ok(e.diagnosis.accuracy >= TARGETS.diagnosis)} | ${pct(s.diagnosis.accuracy)} (${s.diagnosis.correct}/${s.diagnosis.of}) |`,
  ];
  const kinds = ['', '| infection | engine blatant | engine subtle | engine median delay (blatant / subtle) | seed blatant | seed subtle |', '|---|---|---|---|---|---|'];
  const d = (x: number) => (Number.isNaN(x) ? '—' : String(x));
  for (const k of INFECTIONS) kinds.push(`| ${k} | ${pct(e.recallByKind[k].blatant)} | ${pct(e.recallByKind[k].subtle)} | ${d(e.delayByKind[k].blatant)} / ${d(e.delayByKind[k].subtle)} | ${pct(s.recallByKind[k].blatant)} | ${pct(s.recallByKind[k].subtle)} |`);
  return [...rows, ...kinds].join('\n');
}

function main(): void {
  const program = new Command()
    .name('bench:detect')
    .description('Detection benchmark: engine vs the seed prototype on seeded, labelled fleet traces')
    .option('--seeds <list>', 'comma-separated trace seeds', '1,2,3')
    .option('--agents <n>', 'agents per trace', String(DEFAULT_TRACE.agents))
    .option('--hours <n>', 'hours of event time per trace', String(DEFAULT_TRACE.hours))
    .option('--faults-per-kind <n>', 'faults per infection kind and magnitude, per trace', String(DEFAULT_TRACE.faultsPerKind))
    .option('--json <file>', 'also write the full result as JSON')
    .option('--explain', "list the engine's false detections and missed faults")
    .option('--set <key=value...>', 'override an engine setting (e.g. --set cusumH=6 thresholdSigma=3), to back-test tunings')
    .parse();
  const o = program.opts<{ seeds: string; agents: string; hours: string; faultsPerKind: string; json?: string; explain?: boolean; set?: string[] }>();
  const engine: Record<string, number> = {};
  for (const kv of o.set ?? []) {
    const [k, v] = kv.split('=');
    if (!(k in DEFAULT_ENGINE_CONFIG) || typeof DEFAULT_ENGINE_CONFIG[k as keyof EngineConfig] !== 'number' || !Number.isFinite(Number(v))) program.error(`--set ${kv}: expected <numeric engine setting>=<number>`);
    engine[k] = Number(v);
  }
  const seeds = o.seeds.split(',').map((x) => Number(x.trim()));
  const nums = [Number(o.agents), Number(o.hours), Number(o.faultsPerKind), ...seeds];
  if (nums.some((n) => !Number.isFinite(n) || n <= 0)) {
    program.error('--seeds, --agents, --hours and --faults-per-kind must be positive numbers');
  }
  const t = performance.now();
  const r = runBenchmark(seeds, Number(o.agents), Number(o.hours), Number(o.faultsPerKind), engine);
  const secs = (performance.now() - t) / 1000;
  process.stdout.write(`Detection benchmark: seeds ${seeds.join(',')}, ${o.agents} agents × ${o.hours} h each, ${r.samples} samples, ${r.engine.faults} faults (${secs.toFixed(1)} s)\n\n`);
  process.stdout.write(toMarkdown(r) + '\n');
  const wrong = Object.entries(r.engine.diagnosis.wrong).map(([k, n]) => `${k} ×${n}`).join(', ');
  if (wrong) process.stdout.write(`\nengine misdiagnoses: ${wrong}\n`);
  if (o.explain) {
    process.stdout.write('\nengine false detections:\n');
    for (const d of r.engineExplained.falseDetections) process.stdout.write(`  ${d.agent_id} @${d.timestamp} ${d.diagnosis} ${d.max_deviation}σ ${d.anomalies.join(',')} ${JSON.stringify(d.deviations)}\n`);
    process.stdout.write('engine missed faults:\n');
    for (const f of r.engineExplained.missed) process.stdout.write(`  ${f.id} ${f.agent_id} m=${f.m} ${f.samples} samples @${f.start}\n`);
  }
  const { engineExplained: _, ...result } = r;
  if (o.json) writeFileSync(o.json, JSON.stringify(result, null, 2) + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) main();
