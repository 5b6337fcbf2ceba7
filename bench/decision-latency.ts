/**
 * Sample arrival → quarantine decision, with 10,000 agents in memory.
 *
 *   npm run bench:decision
 *
 * Warms N agents past learning, then keeps the whole fleet reporting while
 * a fault is injected into one agent after another. For each faulty sample
 * that produced the decision (the infection_detected event), the time from
 * arrival at the control plane (validation included) to the decision is
 * recorded. Every other sample's processing time is recorded too, as the
 * background distribution.
 */
import { parseConfig } from '../src/config.js';
import { ImmuneProduct } from '../src/control/product.js';
import { silentLogger } from '../src/log.js';
import { MemoryStore } from '../src/store/memory.js';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 10_000);
const FAULTS = Number(process.env.BENCH_FAULTS ?? 2_000);

function rec(agent: number, i: number, now: number, fault: boolean) {
  const m = fault ? 8 : 1;
  return {
    agent_id: `bench-${agent}`,
    agent_type: 'Research',
    timestamp: now,
    latency_ms: 250 + ((i * 31) % 100),
    input_tokens: (700 + ((i * 7919) % 200)) * m,
    output_tokens: 350 + ((i * 13) % 80),
    cost: 0.0031 * m,
    tool_calls: (2 + (i % 3)) * m,
    retries: 0,
    success: true,
    model: `model-${agent % 8}`,
    prompt_hash: 'p1',
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

const config = parseConfig({ PORT: '0', INGEST_API_KEY: 'bench-key-000000000000', OPERATOR_TOKEN: 'bench-operator-0000000000', HEALING_STEP_DELAY_SECONDS: '1' });
const product = await ImmuneProduct.create({ config, log: silentLogger(), agents: 0, durationSeconds: 0, chaos: null, seed: 1, store: new MemoryStore() });
const cp = product.cp;
let i = 0;
for (let round = 0; round < 20; round++) {
  const now = Date.now() / 1000;
  for (let a = 0; a < AGENTS; a++) cp.ingest([rec(a, i++, now, false)], { batch: false });
  await cp.flush();
}

const decisions: number[] = [];
const background: number[] = [];
let faulty = 0;
while (decisions.length < FAULTS && faulty < AGENTS) {
  const victim = faulty++;
  for (let k = 0; k < 6; k++) {
    const now = Date.now() / 1000;
    // Background traffic from 50 other agents between each faulty sample.
    for (let b = 0; b < 50; b++) {
      const a = (victim + 1 + ((i * 7) % (AGENTS - 1))) % AGENTS;
      const t0 = performance.now();
      cp.ingest([rec(a, i++, now, false)], { batch: false });
      background.push(performance.now() - t0);
    }
    const t0 = performance.now();
    const r = cp.ingest([rec(victim, i++, now, true)], { batch: false });
    const dt = performance.now() - t0;
    const status = r.agents.get(`bench-${victim}`)!.status;
    if (status !== 'healthy') {
      decisions.push(dt);
      break;
    }
  }
  if (faulty % 200 === 0) await cp.flush();
}
await product.stop();
const rss = process.memoryUsage().rss / 2 ** 20;
console.log(
  JSON.stringify(
    {
      agents: AGENTS,
      decisions: decisions.length,
      decision_ms: { p50: +pct(decisions, 50).toFixed(3), p99: +pct(decisions, 99).toFixed(3), max: +Math.max(...decisions).toFixed(3) },
      other_samples_ms: { count: background.length, p50: +pct(background, 50).toFixed(3), p99: +pct(background, 99).toFixed(3) },
      rss_mb: Math.round(rss),
    },
    null,
    2,
  ),
);
