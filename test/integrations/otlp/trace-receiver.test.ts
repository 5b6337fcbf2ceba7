import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ImmuneError } from '../../../src/domain/errors.js';
import type { Vitals } from '../../../src/domain/vitals.js';
import { OtlpTraceReceiver, SPAN_SKIP_REASONS, type OtlpReceiverOptions } from '../../../src/integrations/otlp/trace-receiver.js';
import { agent, chat, otlpSpan, tool, TRACE_B, type Spec } from './span-fixtures.js';
import { exportRequest } from './proto-encode.js';

function setup(opts: Partial<OtlpReceiverOptions> = {}, startMs = 1_000_000) {
  const records: Vitals[] = [];
  let now = startMs;
  const receiver = new OtlpTraceReceiver({ onVitals: (r) => records.push(...r), now: () => now, limits: { graceMs: 1000 }, ...opts });
  return { receiver, records, advance: (ms: number) => (now += ms), send: (...specs: Spec[]) => receiver.receive({ spans: specs.map(otlpSpan) }) };
}

describe('OtlpTraceReceiver', () => {
  it('turns an agent invocation sent over several exports into one validated record', () => {
    const { receiver, records, advance, send } = setup();
    expect(send(chat(2, 1, 30, 5), tool(3, 1, 'search'))).toEqual({ spans: 2, rejectedSpans: 0, errorMessage: '' });
    send(agent(1, { attributes: { 'gen_ai.agent.name': 'Planner' } }));
    expect(records).toEqual([]);
    advance(1000);
    expect(receiver.flush()).toBe(1);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ agent_id: 'a1', agent_type: 'Planner', input_tokens: 30, output_tokens: 5, token_count: 35, tool_calls: 1, cost: 0, mcp_servers: [] });
    expect(receiver.stats()).toMatchObject({ exports_received: 2, spans_received: 3, records_emitted: 1, pending_traces: 1 });
  });

  it('emits from receive() too, so a zero grace period needs no tick', () => {
    const { records, send } = setup({ limits: { graceMs: 0 } });
    send(chat(2, undefined, 1, 1));
    expect(records).toHaveLength(1);
  });

  it('reports skipped spans in partial_success terms and counts them by reason', () => {
    const { receiver, send } = setup();
    const out = send(
      { id: 1, attributes: { 'http.route': '/x' } },
      { id: 2, trace: 'zz', attributes: { 'gen_ai.operation.name': 'chat' } },
      { id: 3, attributes: { 'gen_ai.operation.name': 'create_agent' } },
      chat(4, undefined, 1, 1),
      chat(4, undefined, 1, 1),
    );
    expect(out).toEqual({ spans: 5, rejectedSpans: 4, errorMessage: '4 of 5 spans skipped: 1 no_genai_attributes, 1 unsupported_operation, 1 invalid_span, 1 duplicate' });
    expect(receiver.stats().spans_skipped).toEqual({ no_genai_attributes: 1, unsupported_operation: 1, invalid_span: 1, duplicate: 1, late_span: 0, tool_without_agent: 0, evicted: 0 });
  });

  it('counts drops found while assembling (tools without an agent, late spans)', () => {
    const { receiver, advance, send } = setup();
    send(tool(2, undefined, 'x', { trace: TRACE_B }), agent(1));
    advance(1000);
    receiver.flush();
    send(chat(3, 1, 1, 1));
    advance(1000);
    receiver.flush();
    expect(receiver.stats().spans_skipped).toMatchObject({ tool_without_agent: 1, late_span: 1 });
    expect(receiver.stats().records_emitted).toBe(1);
  });

  it('counts a record the schema refuses instead of throwing, and keeps the others', () => {
    const { receiver, records, advance, send } = setup();
    send(chat(2, undefined, 2e12, 1), chat(3, undefined, 5, 1, { trace: TRACE_B })); // 2e12 tokens exceeds the schema's maximum
    advance(1000);
    expect(receiver.flush()).toBe(1);
    expect(records.map((r) => r.input_tokens)).toEqual([5]);
    expect(receiver.stats()).toMatchObject({ records_invalid: 1, records_emitted: 1 });
  });

  it('with timestampBounds, drops and counts records whose span ended outside the live window', () => {
    const { receiver, records, advance, send } = setup({ timestampBounds: { maxAgeSeconds: 3600, maxFutureSeconds: 300 } }, 1_700_000_000_000);
    send(chat(2, undefined, 1, 1)); // ends at 1_700_000_000.09 s: in range
    send(chat(3, undefined, 1, 1, { trace: TRACE_B, start: -7_200_000, end: -7_100_000 })); // two hours old
    advance(1000);
    expect(receiver.flush()).toBe(1);
    expect(records).toHaveLength(1);
    expect(receiver.stats()).toMatchObject({ records_out_of_range: 1, records_emitted: 1, records_invalid: 0 });
  });

  it('counts records lost when onVitals throws, and keeps working', () => {
    let fail = true;
    const got: Vitals[] = [];
    const { receiver, advance, send } = setup({ onVitals: (r) => { if (fail) throw new Error('queue full'); got.push(...r); } });
    send(chat(2, undefined, 1, 1));
    advance(1000);
    expect(() => receiver.flush()).not.toThrow();
    fail = false;
    send(chat(3, undefined, 1, 1, { trace: TRACE_B }));
    advance(1000);
    receiver.flush();
    expect(got).toHaveLength(1);
    expect(receiver.stats()).toMatchObject({ records_failed: 1, records_emitted: 1 });
  });

  it('close() emits everything still held', () => {
    const { receiver, records, send } = setup();
    send(chat(2, 1, 1, 1), agent(1));
    expect(receiver.close()).toBe(1);
    expect(records).toHaveLength(1);
    expect(receiver.stats()).toMatchObject({ pending_traces: 0, pending_spans: 0 });
  });

  it('receiveBody decodes gzip + protobuf, and counts decode errors without keeping anything', async () => {
    const { receiver } = setup();
    const body = exportRequest([{ attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.usage.input_tokens': 3 } }]);
    expect(await receiver.receiveBody(gzipSync(body), 'protobuf', 'gzip')).toMatchObject({ spans: 1, rejectedSpans: 0 });
    const bad = await receiver.receiveBody(body.subarray(0, 10), 'protobuf').catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ImmuneError);
    expect(receiver.stats()).toMatchObject({ exports_received: 1, decode_errors: 1, spans_received: 1, pending_spans: 1 });
  });

  it('lists every skip reason in stats, so dashboards see zeros rather than gaps', () => {
    expect(Object.keys(setup().receiver.stats().spans_skipped)).toEqual([...SPAN_SKIP_REASONS]);
  });

  it('counts evictions when a cap is reached', () => {
    const { receiver, records, send } = setup({ limits: { graceMs: 1000, maxTraces: 1 } });
    send(chat(2, undefined, 1, 1));
    send(chat(2, undefined, 1, 1, { trace: TRACE_B }));
    expect(records).toHaveLength(1); // the first trace was pushed out and emitted early
    expect(receiver.stats()).toMatchObject({ traces_evicted: 1, pending_traces: 1 });
  });
});
