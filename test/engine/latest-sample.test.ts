import { describe, expect, it } from 'vitest';
import type { Vitals } from '../../src/domain/vitals.js';
import { keepLatest } from '../../src/engine/latest-sample.js';

const sample = (over: Partial<Vitals> = {}): Vitals => ({
  agent_id: 'agent-1',
  agent_type: 'Research',
  timestamp: 100,
  latency_ms: 250,
  input_tokens: 700,
  output_tokens: 350,
  token_count: 1050,
  cost: 0.003,
  tool_calls: 2,
  retries: 0,
  success: true,
  model: 'gpt-5',
  provider: 'openai',
  error_type: '',
  prompt_hash: 'p1',
  mcp_servers: ['search'],
  tool_names: [],
  ...over,
});

describe('keepLatest (an agent\'s latest sample, kept between reports)', () => {
  it('keeps a copy of the first sample, not the caller\'s object', () => {
    const v = sample();
    const kept = keepLatest(null, v);
    expect(kept).toEqual(v);
    expect(kept).not.toBe(v);
  });

  it('overwrites the kept record in place with the next sample\'s values, holding on to equal strings and lists it already has', () => {
    const kept = keepLatest(null, sample());
    const { mcp_servers } = kept;
    const next = sample({ timestamp: 101, latency_ms: 9000, success: false, error_type: 'timeout', prompt_hash: 'p2' });
    expect(keepLatest(kept, next)).toBe(kept);
    expect(kept).toEqual(next);
    // an equal but distinct list in the new sample: the kept one stays, so nothing of the new sample is retained
    // (strings are kept the same way, but JavaScript cannot tell two equal strings apart)
    expect(next.mcp_servers).not.toBe(mcp_servers);
    expect(kept.mcp_servers).toBe(mcp_servers);
    // a changed list is taken over
    const moved = sample({ mcp_servers: ['search', 'files'] });
    keepLatest(kept, moved);
    expect(kept.mcp_servers).toBe(moved.mcp_servers);
  });
});
