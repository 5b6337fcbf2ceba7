import { seededRandom } from '../../sim/random.js';
import { EventTimeReplayer, type Detection } from './event-time-replayer.js';
import { blankVitals } from './vitals-chunk.js';

/**
 * A small synthetic fleet replayed through a throwaway engine before the real input, on the engine
 * thread, while the parse worker reads ahead. On a cold process the per-record path otherwise runs
 * unoptimised for its first ~20k records, and V8 recompiles it a dozen times (60–120 ms each on a
 * background thread) as each new branch shows up — learning, judging, slow CUSUMs after 100 samples,
 * the first infection, healing, probation, a fleet incident. Here every branch is seen in ~15k records,
 * so the real records meet code compiled with complete type feedback. Measured on the 622k-record
 * benchmark trace: the warm-up costs ~0.15 s of engine-thread CPU and the real pass saves 0.3–0.5 s.
 *
 * Output-neutral: the throwaway replayer has its own engine, and the engine's module-level state is
 * scratch space and memos of pure functions. Returns the synthetic fleet's detections (for tests).
 */
export function warmUp(): Detection[] {
  const replayer = new EventTimeReplayer();
  const found: Detection[] = [];
  syntheticFleet((v) => replayer.recordInto(v, found));
  return found;
}

const AGENTS = 12;
const ROUNDS = 1200;
/** Seconds between an agent's reports. */
const PERIOD = 10;

/** Multipliers and error odds of one agent in one round: what the synthetic fleet's faults do. */
interface Condition {
  latency: number;
  tokens: number;
  output: number;
  cost: number;
  tools: number;
  retries: number;
  errors: number;
}

const NORMAL: Condition = { latency: 1, tokens: 1, output: 1, cost: 1, tools: 1, retries: 0, errors: 0.01 };

/**
 * Faults after round 300 (every agent has 100+ samples, so the slow CUSUMs are live), each followed by
 * normal behaviour long enough for probation to pass. Odd agents share a provider, which has an outage.
 */
function conditionOf(agent: number, round: number): Condition {
  const during = (from: number, to: number) => round >= from && round < to;
  if (agent === 0 && during(400, 430)) return { ...NORMAL, tokens: 8, output: 8, cost: 8 };
  if (agent === 2 && during(450, 480)) return { ...NORMAL, tools: 6 };
  if (agent === 4 && during(500, 530)) return { ...NORMAL, latency: 6 };
  if (agent % 2 === 1 && during(600, 640)) return { ...NORMAL, latency: 4, retries: 2, errors: 0.4 };
  if (agent === 6 && during(700, 740)) return { ...NORMAL, cost: 10, output: 5 };
  if (agent === 8 && during(950, 990)) return { ...NORMAL, errors: 0.7 };
  if (agent === 0 && during(1000, 1030)) return { ...NORMAL, retries: 3 };
  return NORMAL;
}

/**
 * Feeds the fleet's records in timestamp order, each agent's in one record object of the replay's own
 * shape (as VitalsReader gives them). Agent 10 deploys a new prompt at round 800, agent 11 switches
 * model at 900.
 */
function syntheticFleet(feed: (v: ReturnType<typeof blankVitals>) => void): void {
  const rnd = seededRandom(1);
  const random = rnd.next;
  const gauss = rnd.normal;
  const start = 1_767_225_600;
  const records = Array.from({ length: AGENTS }, (_, a) => {
    const v = blankVitals();
    v.agent_id = `warm-up-${a}`;
    v.agent_type = 'WarmUp';
    v.provider = a % 2 === 1 ? 'provider-b' : 'provider-a';
    return v;
  });
  const models = ['model-a-1', 'model-b-1', 'model-b-2'];
  for (let round = 0; round < ROUNDS; round++) {
    for (let a = 0; a < AGENTS; a++) {
      const c = conditionOf(a, round);
      const v = records[a];
      const input = Math.round((300 + 40 * a) * c.tokens * Math.exp(0.25 * gauss()));
      const output = Math.round((200 + 30 * a) * c.output * Math.exp(0.3 * gauss()));
      const failed = random() < c.errors;
      v.timestamp = start + round * PERIOD + a * 0.25;
      v.latency_ms = Math.round((400 + 150 * a) * c.latency * Math.exp(0.3 * gauss()));
      v.input_tokens = input;
      v.output_tokens = output;
      v.token_count = input + output;
      v.cost = Math.round((input + 4 * output) * c.cost * 1e-3) / 1e3;
      v.tool_calls = Math.max(0, Math.round((1 + (a % 4)) * c.tools + gauss()));
      v.retries = c.retries > 0 ? Math.round(c.retries * random()) : random() < 0.02 ? 1 : 0;
      v.success = !failed;
      v.model = models[a === 11 && round >= 900 ? 2 : a % 2];
      v.error_type = failed ? 'timeout' : '';
      v.prompt_hash = a === 10 && round >= 800 ? 'prompt-2' : 'prompt-1';
      feed(v);
    }
  }
}
