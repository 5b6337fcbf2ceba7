import { describe, expect, it } from 'vitest';
import { ImmuneError } from '../../src/domain/errors.js';
import { checkTimestamp, parseVitals } from '../../src/domain/vitals.js';

function fails(input: unknown): ImmuneError {
  try {
    parseVitals(input, 1000);
  } catch (e) {
    expect(e).toBeInstanceOf(ImmuneError);
    return e as ImmuneError;
  }
  throw new Error('expected a validation error');
}

describe('parseVitals', () => {
  it('applies defaults: token_count = in + out, timestamp = now, success from error_type', () => {
    const v = parseVitals({ agent_id: 'a1', input_tokens: 3, output_tokens: 4, error_type: 'timeout' }, 1000);
    expect(v.token_count).toBe(7);
    expect(v.timestamp).toBe(1000);
    expect(v.success).toBe(false);
    expect(v.mcp_servers).toEqual([]);
  });

  it.each([
    [{}, 'agent_id', 'is required'],
    [{ agent_id: '' }, 'agent_id', ''],
    [{ agent_id: 'has space' }, 'agent_id', 'pattern'],
    [{ agent_id: 'x'.repeat(129) }, 'agent_id', ''],
    [{ agent_id: 'a', latency_ms: -1 }, 'latency_ms', '>= 0'],
    [{ agent_id: 'a', latency_ms: Number.NaN }, 'latency_ms', 'finite'],
    [{ agent_id: 'a', cost: Number.POSITIVE_INFINITY }, 'cost', 'finite'],
    [{ agent_id: 'a', tool_calls: 1.5 }, 'tool_calls', 'integer'],
    [{ agent_id: 'a', latency_ms: '12' }, 'latency_ms', 'number'],
    [{ agent_id: 'a', success: 'yes' }, 'success', 'boolean'],
    [{ agent_id: 'a', mcp_servers: [1] }, 'mcp_servers.0', 'string'],
  ])('rejects %j naming %s', (input, field, reason) => {
    const e = fails(input);
    expect(e.code).toBe('IMM_ERR_VALIDATION');
    expect(e.status).toBe(400);
    expect(e.details.field).toBe(field);
    expect(e.message).toContain(`'${field}'`);
    expect(e.message).toContain(reason);
  });

  it('rejects non-objects', () => {
    for (const x of [null, 3, 'str', []]) expect(fails(x).details.field).toBe('(record)');
  });

  it('names the record index inside a batch', () => {
    try {
      parseVitals({ agent_id: 'a', retries: -2 }, 0, 7);
      throw new Error('no error');
    } catch (e) {
      expect((e as ImmuneError).message).toMatch(/^record 7: field 'retries'/);
      expect((e as ImmuneError).details.index).toBe(7);
    }
  });

  it('bounds timestamps for live ingest only when asked', () => {
    const bounds = { maxAgeSeconds: 3600, maxFutureSeconds: 300 };
    const old = parseVitals({ agent_id: 'a', timestamp: 1 }, 10_000);
    expect(() => checkTimestamp(old, 10_000, bounds)).toThrow(/in the past/);
    const future = parseVitals({ agent_id: 'a', timestamp: 10_400 }, 10_000);
    expect(() => checkTimestamp(future, 10_000, bounds)).toThrow(/in the future/);
    const ok = parseVitals({ agent_id: 'a', timestamp: 9_000 }, 10_000);
    expect(() => checkTimestamp(ok, 10_000, bounds)).not.toThrow();
  });
});
