import { ImmuneError } from '../domain/errors.js';
import { INFECTION_TYPES, type InfectionType } from './infections.js';

/** One scheduled infection: at `at` seconds into the run, infect an agent (by id, or by fleet position). */
export interface ChaosEntry {
  at: number;
  infection: InfectionType;
  agent: string | number;
  magnitude: number;
}

/**
 * The demo schedule: every infection type once per cycle, mild (auto-healed)
 * and severe (approval) cases mixed, on different agents, starting after the
 * baselines are learned. Repeats every `cycle` seconds.
 */
const CYCLE: ReadonlyArray<Omit<ChaosEntry, 'at'> & { offset: number }> = [
  { offset: 25, infection: 'tool_loop', agent: 1, magnitude: 3 },
  { offset: 40, infection: 'prompt_injection', agent: 6, magnitude: 8 },
  { offset: 55, infection: 'token_explosion', agent: 3, magnitude: 2.5 },
  { offset: 70, infection: 'latency_spike', agent: 8, magnitude: 2.5 },
  { offset: 85, infection: 'high_retry_rate', agent: 4, magnitude: 8 },
  { offset: 100, infection: 'memory_corruption', agent: 9, magnitude: 3 },
  { offset: 115, infection: 'prompt_drift', agent: 2, magnitude: 3 },
  { offset: 130, infection: 'cost_overrun', agent: 7, magnitude: 4 },
  { offset: 145, infection: 'full_meltdown', agent: 5, magnitude: 7 },
  { offset: 160, infection: 'token_explosion', agent: 0, magnitude: 9 },
];

export function defaultSchedule(durationSeconds: number, fleetSize: number, cycle = 180): ChaosEntry[] {
  const out: ChaosEntry[] = [];
  const horizon = durationSeconds > 0 ? durationSeconds : cycle * 10;
  for (let start = 0, round = 0; start < horizon; start += cycle, round++) {
    for (const c of CYCLE) {
      const at = start + c.offset;
      if (at >= horizon) break;
      out.push({ at, infection: c.infection, agent: ((c.agent as number) + round * 3) % Math.max(1, fleetSize), magnitude: c.magnitude });
    }
  }
  return out;
}

/**
 * Parses CHAOS_SCHEDULE / --chaos-schedule: comma-separated `seconds:infection[:agent][:magnitude]`,
 * e.g. "30:tool_loop:Docker:4,60:prompt_injection". Agent defaults to a rotating position.
 */
export function parseSchedule(spec: string): ChaosEntry[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item, i) => {
      const [at, infection, agent, magnitude] = item.split(':');
      const t = Number(at);
      if (!Number.isFinite(t) || t < 0) throw new ImmuneError('IMM_ERR_CONFIG', `chaos schedule entry ${i + 1} ('${item}'): time must be seconds ≥ 0`, { entry: item });
      if (!(INFECTION_TYPES as readonly string[]).includes(infection)) {
        throw new ImmuneError('IMM_ERR_CONFIG', `chaos schedule entry ${i + 1} ('${item}'): unknown infection '${infection}' (one of ${INFECTION_TYPES.join(', ')})`, { entry: item });
      }
      const m = magnitude === undefined || magnitude === '' ? 6 : Number(magnitude);
      if (!Number.isFinite(m) || m < 1) throw new ImmuneError('IMM_ERR_CONFIG', `chaos schedule entry ${i + 1} ('${item}'): magnitude must be ≥ 1`, { entry: item });
      const a = agent === undefined || agent === '' ? i : /^\d+$/.test(agent) ? Number(agent) : agent;
      return { at: t, infection: infection as InfectionType, agent: a, magnitude: m };
    })
    .sort((a, b) => a.at - b.at);
}
