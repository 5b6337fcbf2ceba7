import type { Vitals } from '../../src/domain/vitals.js';

/** Deterministic vitals for `agents` agents (no Math.random: runs are comparable). */
export function makeBatch(size: number, agents: number, offset: number, t0: number): Vitals[] {
  const out: Vitals[] = new Array(size);
  for (let k = 0; k < size; k++) {
    const i = offset + k;
    const inTok = 700 + ((i * 7919) % 200);
    const outTok = 350 + ((i * 13) % 80);
    out[k] = {
      agent_id: `bench-agent-${i % agents}`,
      agent_type: 'Research',
      timestamp: t0 + i / 1000,
      latency_ms: 250 + ((i * 31) % 100),
      input_tokens: inTok,
      output_tokens: outTok,
      token_count: inTok + outTok,
      cost: 0.0031,
      tool_calls: 2 + (i % 3),
      retries: i % 17 === 0 ? 1 : 0,
      success: i % 23 !== 0,
      model: 'GPT-5',
      provider: 'openai',
      error_type: i % 23 === 0 ? 'timeout' : '',
      prompt_hash: 'p-9f2c1a',
      mcp_servers: ['github', 'slack'],
      tool_names: [],
    };
  }
  return out;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Sends `total` vitals as batches with `concurrency` writes in flight; returns vitals/s (all acknowledged = durable). */
export async function drive(write: (batch: Vitals[]) => Promise<void>, o: { total: number; batch: number; concurrency: number; agents: number; t0: number }): Promise<number> {
  const pool = Array.from({ length: 32 }, (_, j) => makeBatch(o.batch, o.agents, j * o.batch, o.t0));
  let sent = 0;
  let n = 0;
  const started = performance.now();
  const worker = async () => {
    while (sent < o.total) {
      const b = pool[n++ % pool.length];
      const base = o.t0 + sent / 1000;
      for (let k = 0; k < b.length; k++) b[k].timestamp = base + k / 1000;
      sent += b.length;
      await write(b);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return sent / ((performance.now() - started) / 1000);
}

export const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
