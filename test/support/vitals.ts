import { parseVitals, type Vitals } from '../../src/domain/vitals.js';
import { seededRandom, type Random } from '../../src/sim/random.js';

/** Deterministic vitals for one agent: log-normal noise around a profile, with optional multipliers (a fault). */
export function makeVitals(agentId: string, seed = 1, profile: Partial<Record<'latency' | 'input' | 'output' | 'tools', number>> = {}) {
  const rnd: Random = seededRandom(seed);
  let t = 1_000_000;
  const p = { latency: 300, input: 800, output: 400, tools: 3, ...profile };
  return (fault: { latency?: number; input?: number; output?: number; tools?: number; error?: boolean; prompt?: string; model?: string } = {}): Vitals => {
    t += 1;
    const inTok = Math.round(p.input * rnd.logNormal(0.15) * (fault.input ?? 1));
    const outTok = Math.round(p.output * rnd.logNormal(0.15) * (fault.output ?? 1));
    return parseVitals(
      {
        agent_id: agentId,
        agent_type: 'Research',
        timestamp: t,
        latency_ms: Math.round(p.latency * rnd.logNormal(0.2) * (fault.latency ?? 1)),
        input_tokens: inTok,
        output_tokens: outTok,
        cost: ((inTok + outTok) * 0.003) / 1000,
        tool_calls: Math.round(p.tools * (fault.tools ?? 1)),
        retries: 0,
        success: !fault.error,
        error_type: fault.error ? 'timeout' : '',
        model: fault.model ?? 'GPT-5',
        provider: 'openai',
        prompt_hash: fault.prompt ?? 'prompt-v1',
      },
      t,
    );
  };
}
