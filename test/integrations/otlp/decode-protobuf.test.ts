import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { beforeAll, describe, expect, it } from 'vitest';
import { ImmuneError } from '../../../src/domain/errors.js';
import { decodeJsonTraceRequest } from '../../../src/integrations/otlp/decode-json.js';
import { decodeProtobufTraceRequest } from '../../../src/integrations/otlp/decode-protobuf.js';
import type { DecodedTraceExport, OtlpValue } from '../../../src/integrations/otlp/otlp-types.js';
import { anyValue, exportRequest, key, len, spanMessage, str, varint, vint } from './proto-encode.js';
import { agentRun, captureExport, recordSpans, T0_MS } from './sdk-spans.js';

function plain(v: OtlpValue): unknown {
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

function nanos(hr: [number, number]): bigint {
  return BigInt(hr[0]) * 1_000_000_000n + BigInt(hr[1]);
}

function expectValidationError(fn: () => unknown, pattern: RegExp): ImmuneError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ImmuneError);
    expect((e as ImmuneError).code).toBe('IMM_ERR_VALIDATION');
    expect((e as ImmuneError).message).toMatch(pattern);
    return e as ImmuneError;
  }
  throw new Error('expected a validation error');
}

describe('decoding what the real OpenTelemetry exporters send', () => {
  let spans: ReadableSpan[];
  let fromProto: DecodedTraceExport;
  let fromJson: DecodedTraceExport;

  beforeAll(async () => {
    spans = await recordSpans((tracer) => {
      agentRun(tracer);
      const s = tracer.startSpan('typed', {
        kind: SpanKind.SERVER,
        startTime: T0_MS,
        attributes: { s: 'ü text', i: -42, big: 2 ** 40, d: 0.25, b: true, list: ['a', 'b'], nums: [1, 2], flags: [true, false] },
      }, trace.setSpan(context.active(), trace.wrapSpanContext({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 })));
      s.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
      s.end(T0_MS + 1.5);
    }, { 'service.name': 'checkout-agent', 'deployment.environment': 'prod' });
    fromProto = decodeProtobufTraceRequest((await captureExport(spans, 'protobuf')).body);
    fromJson = decodeJsonTraceRequest((await captureExport(spans, 'json')).body);
  });

  it('protobuf and JSON decode to the same spans', () => {
    expect(fromProto.spans).toHaveLength(spans.length);
    const norm = (d: DecodedTraceExport) => d.spans.map((s) => ({ ...s, attributes: plain(s.attributes), resource: plain(s.resource.attributes) }));
    expect(norm(fromJson)).toEqual(norm(fromProto));
  });

  it('every field matches the span the SDK recorded', () => {
    const byId = new Map(fromProto.spans.map((s) => [s.spanId, s]));
    for (const rs of spans) {
      const d = byId.get(rs.spanContext().spanId);
      expect(d, rs.name).toBeDefined();
      if (!d) continue;
      expect(d.traceId).toBe(rs.spanContext().traceId);
      expect(d.parentSpanId).toBe(rs.parentSpanContext?.spanId ?? '');
      expect(d.name).toBe(rs.name);
      expect(d.kind).toBe(rs.kind + 1); // OTLP shifts the API's enum by one for UNSPECIFIED
      expect(d.startTimeUnixNano).toBe(nanos(rs.startTime));
      expect(d.endTimeUnixNano).toBe(nanos(rs.endTime));
      expect(plain(d.attributes)).toEqual(rs.attributes);
      expect(d.status).toEqual({ code: rs.status.code, message: rs.status.message ?? '' });
      expect(d.resource.attributes.get('service.name')).toBe('checkout-agent');
      expect(d.resource.attributes.get('deployment.environment')).toBe('prod');
    }
    const typed = fromProto.spans.find((s) => s.name === 'typed');
    expect(typed?.endTimeUnixNano).toBe(1_700_000_000_001_500_000n); // sub-millisecond end time kept exactly
    expect(typed?.parentSpanId).toBe('00f067aa0ba902b7');
  });

  it('spans of one resource share one resource object', () => {
    expect(new Set(fromProto.spans.map((s) => s.resource)).size).toBe(1);
  });
});

describe('decodeProtobufTraceRequest on crafted payloads', () => {
  it('decodes every AnyValue kind, including negative int64 and nested values', () => {
    const body = exportRequest([{ attributes: {
      neg: -1, min: { int: -(2n ** 63n) }, dbl: { double: -2.5 }, t: true, bytes: new Uint8Array([1, 2, 3]),
      nested: { a: ['x', 1, { b: false }] }, empty: [],
    } }]);
    const [span] = decodeProtobufTraceRequest(body).spans;
    expect(plain(span.attributes)).toEqual({ neg: -1, min: -(2 ** 63), dbl: -2.5, t: true, bytes: new Uint8Array([1, 2, 3]), nested: { a: ['x', 1, { b: false }] }, empty: [] });
  });

  it('reads an empty AnyValue as null, keeps the last of a repeated key, and reads status', () => {
    const body = exportRequest([{
      attributes: { k: 'first' },
      status: { code: 2, message: 'failed' },
      extra: [...len(9, [...str(1, 'k'), ...len(2, anyValue('second'))]), ...len(9, [...str(1, 'nothing'), ...len(2, [])])],
    }]);
    const [span] = decodeProtobufTraceRequest(body).spans;
    expect(span.attributes.get('k')).toBe('second');
    expect(span.attributes.get('nothing')).toBeNull();
    expect(span.status).toEqual({ code: 2, message: 'failed' });
  });

  it('skips unknown fields of every wire type, events and links', () => {
    const unknown = [...vint(99, 7), ...key(98, 1), 1, 2, 3, 4, 5, 6, 7, 8, ...key(97, 5), 1, 2, 3, 4, ...len(96, [1, 2, 3])];
    const event = len(11, [...str(2, 'gen_ai.content.prompt'), ...len(3, [...str(1, 'x'), ...len(2, anyValue('y'))])]);
    const body = Buffer.concat([exportRequest([{ name: 'kept', extra: [...unknown, ...event] }]), Buffer.from(unknown)]);
    const { spans } = decodeProtobufTraceRequest(body);
    expect(spans.map((s) => s.name)).toEqual(['kept']);
    expect(spans[0].attributes.size).toBe(0);
  });

  it('reads the pre-0.19 instrumentation_library_spans field (1000) like scope_spans', () => {
    const body = Buffer.from(len(1, [...len(1000, len(2, spanMessage({ name: 'old-sdk' })))]));
    expect(decodeProtobufTraceRequest(body).spans.map((s) => s.name)).toEqual(['old-sdk']);
  });

  it('an empty body is an export with no spans', () => {
    expect(decodeProtobufTraceRequest(Buffer.alloc(0)).spans).toEqual([]);
  });

  it('names the byte and the field path of a length that runs past its message', () => {
    const good = exportRequest([{ name: 'a' }, { name: 'b' }]);
    const cut = good.subarray(0, good.length - 3);
    const e = expectValidationError(() => decodeProtobufTraceRequest(cut), /malformed OTLP protobuf at byte 1 in resource_spans\[0\]: length \d+ runs past the end/);
    expect(e.details.field).toBe('resource_spans[0]');
    // The same defect inside a span names the span.
    const inner = Buffer.from(len(1, len(2, len(2, [...str(5, 'x'), ...key(9, 2), ...varint(50), 1, 2]))));
    expectValidationError(() => decodeProtobufTraceRequest(inner), /in resource_spans\[0\]\.scope_spans\[0\]\.spans\[0\]: length 50 runs past/);
  });

  it('every truncation of a real payload either decodes or fails with IMM_ERR_VALIDATION', () => {
    const body = exportRequest([{ attributes: { 'gen_ai.operation.name': 'chat', n: 5, nested: { a: [1, 'b'] } }, status: { code: 2, message: 'x' } }]);
    let failures = 0;
    for (let n = 0; n < body.length; n++) {
      try {
        decodeProtobufTraceRequest(body.subarray(0, n));
      } catch (e) {
        expect(e).toBeInstanceOf(ImmuneError);
        failures++;
      }
    }
    expect(failures).toBeGreaterThan(body.length - 5);
  });

  it('refuses a known field with the wrong wire type, naming it', () => {
    const span = [...vint(1, 5), ...str(5, 'x')]; // trace_id as a varint
    expectValidationError(() => decodeProtobufTraceRequest(Buffer.from(len(1, len(2, len(2, span))))), /field trace_id has wire type varint, expected len/);
  });

  it('refuses group wire types, field number 0 and over-long varints', () => {
    expectValidationError(() => decodeProtobufTraceRequest(Buffer.from([...key(5, 3)])), /unsupported wire type 3 \(group start\)/);
    expectValidationError(() => decodeProtobufTraceRequest(Buffer.from([0x02, 0x00])), /invalid field number 0/);
    expectValidationError(() => decodeProtobufTraceRequest(Buffer.from([...key(2, 0), ...new Array(11).fill(0xff), 0x01])), /varint longer than 10 bytes/);
  });

  it('caps attribute nesting depth and spans per export', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 40; i++) deep = [deep];
    expectValidationError(() => decodeProtobufTraceRequest(exportRequest([{ attributes: { deep: deep as never } }])), /nested deeper than 32 levels/);
    const three = exportRequest([{ spanId: '0000000000000001' }, { spanId: '0000000000000002' }, { spanId: '0000000000000003' }]);
    expect(decodeProtobufTraceRequest(three, { maxSpansPerExport: 3, maxValueDepth: 32 }).spans).toHaveLength(3);
    expectValidationError(() => decodeProtobufTraceRequest(three, { maxSpansPerExport: 2, maxValueDepth: 32 }), /more than 2 spans in one export/);
  });

  it('random bytes never crash or hang the decoder (seeded)', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const real = exportRequest([{ attributes: { a: 'b', n: 3, l: [1, 2] }, status: { code: 2 } }]);
    for (let i = 0; i < 2000; i++) {
      const buf = Buffer.from(real);
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
      try {
        decodeProtobufTraceRequest(buf);
      } catch (e) {
        if (!(e instanceof ImmuneError)) throw e;
      }
    }
  });

  it('keeps ids of any length as hex (the mapping rejects wrong lengths)', () => {
    const [span] = decodeProtobufTraceRequest(exportRequest([{ traceId: 'abcd', spanId: '', parentSpanId: '01' }])).spans;
    expect(span).toMatchObject({ traceId: 'abcd', spanId: '', parentSpanId: '01' });
  });

  it('spanMessage helper round-trips the default span', () => {
    const [span] = decodeProtobufTraceRequest(Buffer.from(len(1, len(2, len(2, spanMessage({})))))).spans;
    expect(span).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', parentSpanId: '', kind: 1, startTimeUnixNano: 1_700_000_000_000_000_000n, endTimeUnixNano: 1_700_000_000_250_000_000n });
  });
});
