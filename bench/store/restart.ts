/**
 * Restart to full state with 10,000 agents (target < 2 s, DESIGN §4): open
 * the embedded database, read the local state (run id, engine snapshot), read
 * the run's event log and fold it back into a fresh engine. Measured in this
 * process with fresh objects (the cost of loading Node and the code is not
 * counted), median of several restarts.
 *
 *   node --import tsx bench/store/restart.ts
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImmuneEvent } from '../../src/domain/events.js';
import { ImmuneEngine } from '../../src/engine/engine.js';
import { isReady } from '../../src/engine/baseline.js';
import { LocalState } from '../../src/state/local-state.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { fmt, makeBatch, median } from './common.js';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const T0 = 1_700_000_000;
const dir = mkdtempSync(join(tmpdir(), 'immune-bench-restart-'));
const dbPath = join(dir, 'immune.sqlite');
const RUN = 'run-bench0restart';

// ── Build the state a long-running control plane would leave behind ──
const engine = new ImmuneEngine({ healingStepDelaySeconds: 0 });
const events: ImmuneEvent[] = [];
const vitals = [];
for (let round = 0; round < 20; round++) {
  const batch = makeBatch(AGENTS, AGENTS, round * AGENTS, T0 + round * 10);
  for (const v of batch) {
    v.latency_ms *= 1 + ((v.timestamp * 7) % 0.2);
    events.push(...engine.observe(v).events);
  }
  vitals.push(...batch);
}
// Every 20th agent turns sick: infections, approvals, quarantines, healing attempts.
for (let i = 0; i < AGENTS; i += 20) {
  for (let k = 0; k < 4; k++) {
    const [v] = makeBatch(1, AGENTS, i, T0 + 300 + k);
    v.agent_id = `bench-agent-${i}`;
    v.latency_ms *= 12;
    v.input_tokens *= 15;
    v.token_count = v.input_tokens + v.output_tokens;
    v.tool_calls *= 8;
    events.push(...engine.observe(v).events);
  }
}
for (const rt of engine.all()) if (rt.wf.state === 'pending_approval' && Number(rt.id.split('-')[2]) % 40 === 0) events.push(...engine.reject(rt.id, 'operator:bench', T0 + 400).events);
events.push(...engine.tick(T0 + 401).events);
const snap = engine.snapshot();
const states = new Map<string, number>();
for (const rt of engine.all()) states.set(rt.wf.state, (states.get(rt.wf.state) ?? 0) + 1);

const writer = new SqliteStore({ path: dbPath });
await writer.open();
await writer.registerRun(RUN);
for (let i = 0; i < events.length; i += 5000) await writer.appendEvents(RUN, events.slice(i, i + 5000));
for (let i = 0; i < vitals.length; i += 5000) await writer.appendVitals(RUN, vitals.slice(i, i + 5000));
await writer.saveSnapshot(RUN, snap);
await writer.close();
const local = new LocalState(join(dir, 'cache'));
local.save({ run_id: RUN, last_seq: engine.lastSeq, snapshot: snap });
console.log(`state: ${AGENTS} agents, ${events.length} events, ${vitals.length} vitals; lifecycle ${JSON.stringify(Object.fromEntries(states))}; snapshot.json ${(statSync(join(dir, 'cache', 'snapshot.json')).size / 1e6).toFixed(1)} MB`);

// ── Restart, several times ──
const times: Record<string, number[]> = { open_store: [], load_local_state: [], read_events: [], restore_engine: [], total: [] };
let check = '';
for (let r = 0; r < ROUNDS; r++) {
  const t0 = performance.now();
  const store = new SqliteStore({ path: dbPath });
  await store.open();
  const t1 = performance.now();
  const { state } = new LocalState(join(dir, 'cache')).load();
  const t2 = performance.now();
  const log = await store.readEvents(state.run_id!);
  const t3 = performance.now();
  const fresh = new ImmuneEngine({ healingStepDelaySeconds: 0 });
  fresh.restore(log, state.snapshot ?? undefined);
  const t4 = performance.now();
  times.open_store.push(t1 - t0);
  times.load_local_state.push(t2 - t1);
  times.read_events.push(t3 - t2);
  times.restore_engine.push(t4 - t3);
  times.total.push(t4 - t0);
  // Same state as before the "crash": every lifecycle state and every baseline.
  const same = [...engine.all()].every((a) => fresh.get(a.id)?.wf.state === a.wf.state && isReady(fresh.get(a.id)!.baseline, fresh.cfg) === isReady(a.baseline, engine.cfg));
  check = same && fresh.size === engine.size && fresh.lastSeq === engine.lastSeq ? 'identical' : 'DIFFERENT';
  await store.close();
}
rmSync(dir, { recursive: true, force: true });
const out = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, Math.round(median(v))]));
console.log(`restart to full state (median of ${ROUNDS}): ${fmt(out.total)} ms = open ${out.open_store} + local state ${out.load_local_state} + read ${fmt(events.length)} events ${out.read_events} + restore ${out.restore_engine}; restored state ${check}`);
writeFileSync(join(import.meta.dirname, 'results-restart.json'), JSON.stringify({ agents: AGENTS, events: events.length, vitals: vitals.length, lifecycle: Object.fromEntries(states), median_ms: out, runs_total_ms: times.total.map(Math.round), restored: check }, null, 2) + '\n');
if (check !== 'identical') process.exit(1);
