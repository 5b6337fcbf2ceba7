import { describe, expect, it } from 'vitest';
import { ImmuneError } from '../../../src/domain/errors.js';
import { decodeJsonTraceRequest } from '../../../src/integrations/otlp/decode-json.js';

const TRACE = '0AF7651916CD43DD8448EB211C80319C';

function request(span: Record<string, unknown>, resource: unknown = { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] }): string {
  return JSON.stringify({ resourceSpans: [{ resource, scopeSpans: [{ scope: { name: 's' }, spans: [span] }] }] });
}

function fails(body: string, code: string, pattern: RegExp, field?: string): void {
  try {
    decodeJsonTraceRequest(body);
  } catch (e) {
    expect(e).toBeInstanceOf(ImmuneError);
    expect((e as ImmuneError).code).toBe(code);
    expect((e as ImmuneError).message).toMatch(pattern);
    if (field !== undefined) expect((e as ImmuneError).details.field).toBe(field);
    return;
  }
  throw new Error('expected an error');
}

describe('decodeJsonTraceRequest', () => {
  it('reads OTLP/JSON: hex ids (any case), int64 as strings or numbers, enums as ints', () => {
    const [s] = decodeJsonTraceRequest(request({
      traceId: TRACE, spanId: 'B7AD6B7169203331', parentSpanId: '', name: 'chat', kind: 3,
      startTimeUnixNano: '1700000000000000001', endTimeUnixNano: 1700000000,
      attributes: [
        { key: 'a', value: { stringValue: 'x' } },
        { key: 'i', value: { intValue: '-9007199254740993' } },
        { key: 'j', value: { intValue: 7 } },
        { key: 'd', value: { doubleValue: 1.5 } },
        { key: 'nan', value: { doubleValue: 'NaN' } },
        { key: 'b', value: { boolValue: false } },
        { key: 'arr', value: { arrayValue: { values: [{ stringValue: 'p' }, { intValue: '2' }] } } },
        { key: 'kv', value: { kvlistValue: { values: [{ key: 'k', value: { boolValue: true } }] } } },
        { key: 'raw', value: { bytesValue: 'AQID' } },
        { key: 'none', value: {} },
      ],
      status: { code: 2, message: 'bad' },
    })).spans;
    expect(s.traceId).toBe(TRACE.toLowerCase());
    expect(s.spanId).toBe('b7ad6b7169203331');
    expect(s.startTimeUnixNano).toBe(1_700_000_000_000_000_001n);
    expect(s.endTimeUnixNano).toBe(1_700_000_000n);
    expect(s.kind).toBe(3);
    expect(s.status).toEqual({ code: 2, message: 'bad' });
    const a = s.attributes;
    expect([a.get('a'), a.get('i'), a.get('j'), a.get('d'), a.get('b')]).toEqual(['x', -9007199254740992, 7, 1.5, false]);
    expect(a.get('nan')).toBeNaN();
    expect(a.get('arr')).toEqual(['p', 2]);
    expect(a.get('kv')).toEqual(new Map([['k', true]]));
    expect(a.get('raw')).toEqual(new Uint8Array([1, 2, 3]));
    expect(a.get('none')).toBeNull();
    expect(s.resource.attributes.get('service.name')).toBe('svc');
  });

  it('also reads snake_case field names and enum names, as the protobuf JSON mapping allows', () => {
    const body = JSON.stringify({ resource_spans: [{ scope_spans: [{ spans: [{
      trace_id: TRACE, span_id: 'b7ad6b7169203331', parent_span_id: 'a7ad6b7169203331', kind: 'SPAN_KIND_CLIENT',
      start_time_unix_nano: '1', end_time_unix_nano: '2', status: { code: 'STATUS_CODE_ERROR' },
      attributes: [{ key: 'n', value: { int_value: 3 } }],
    }] }] }] });
    const [s] = decodeJsonTraceRequest(body).spans;
    expect(s).toMatchObject({ parentSpanId: 'a7ad6b7169203331', kind: 3, startTimeUnixNano: 1n, endTimeUnixNano: 2n, status: { code: 2, message: '' } });
    expect(s.attributes.get('n')).toBe(3);
    expect(s.resource.attributes.size).toBe(0);
  });

  it('reads the pre-0.19 instrumentationLibrarySpans name like scopeSpans', () => {
    const body = JSON.stringify({ resourceSpans: [{ instrumentationLibrarySpans: [{ spans: [{ name: 'old-sdk' }] }] }] });
    expect(decodeJsonTraceRequest(body).spans.map((s) => s.name)).toEqual(['old-sdk']);
  });

  it('ignores unknown fields and accepts an empty request', () => {
    expect(decodeJsonTraceRequest('{}').spans).toEqual([]);
    expect(decodeJsonTraceRequest('{"resourceSpans":[],"extra":1}').spans).toEqual([]);
    const [s] = decodeJsonTraceRequest(request({ traceId: TRACE, spanId: 'b7ad6b7169203331', events: [{ name: 'e' }], links: [], flags: 257, whatever: { x: 1 } })).spans;
    expect(s.name).toBe('');
  });

  it('refuses a body that is not JSON', () => {
    fails('{"resourceSpans": [', 'IMM_ERR_MALFORMED_JSON', /OTLP\/JSON body is not valid JSON/);
    fails('', 'IMM_ERR_MALFORMED_JSON', /not valid JSON/);
  });

  it('survives absurdly deep JSON nesting without a stack overflow', () => {
    const deep = '['.repeat(50_000) + ']'.repeat(50_000);
    try {
      decodeJsonTraceRequest(deep);
      throw new Error('expected an error');
    } catch (e) {
      expect(e).toBeInstanceOf(ImmuneError);
    }
  });

  it('names the field path of every shape error', () => {
    fails('[]', 'IMM_ERR_VALIDATION', /'\(body\)' must be an object/, '(body)');
    fails('{"resourceSpans": {}}', 'IMM_ERR_VALIDATION', /'resourceSpans' must be an array/);
    fails(request({ traceId: 'Cvdlz...base64==' }), 'IMM_ERR_VALIDATION', /'resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.traceId' must be a hex string/);
    fails(request({ startTimeUnixNano: -5 }), 'IMM_ERR_VALIDATION', /spans\[0\]\.startTimeUnixNano' must be a non-negative integer/);
    fails(request({ endTimeUnixNano: '1.5' }), 'IMM_ERR_VALIDATION', /endTimeUnixNano/);
    fails(request({ endTimeUnixNano: '18446744073709551616' }), 'IMM_ERR_VALIDATION', /endTimeUnixNano/); // 2^64
    fails(request({ kind: 'SOMETHING' }), 'IMM_ERR_VALIDATION', /\.kind' must be an enum integer/);
    fails(request({ attributes: [{ key: 'x', value: { intValue: 'ten' } }] }), 'IMM_ERR_VALIDATION', /attributes\[0\]\.value\.intValue' must be an integer/);
    fails(request({ attributes: [{ key: 'x', value: { boolValue: 'true' } }] }), 'IMM_ERR_VALIDATION', /boolValue' must be a boolean/);
    fails(request({ attributes: [{ key: 'x', value: { doubleValue: 'abc' } }] }), 'IMM_ERR_VALIDATION', /doubleValue' must be a number/);
    fails(request({ attributes: [{ key: 'x', value: { bytesValue: '***' } }] }), 'IMM_ERR_VALIDATION', /bytesValue' must be base64/);
    fails(request({ attributes: [{ key: 5, value: {} }] }), 'IMM_ERR_VALIDATION', /attributes\[0\]\.key' must be a string/);
    fails(request({ attributes: {} }), 'IMM_ERR_VALIDATION', /attributes' must be an array/);
    fails(request({ status: 'ERROR' }), 'IMM_ERR_VALIDATION', /status' must be an object/);
    fails(request({}, 'res'), 'IMM_ERR_VALIDATION', /resourceSpans\[0\]\.resource' must be an object/);
  });

  it('caps attribute nesting and spans per export', () => {
    let v: unknown = { stringValue: 'leaf' };
    for (let i = 0; i < 40; i++) v = { arrayValue: { values: [v] } };
    fails(request({ attributes: [{ key: 'deep', value: v }] }), 'IMM_ERR_VALIDATION', /nests deeper than 32 levels/);
    const three = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{}, {}, {}] }] }] });
    expect(decodeJsonTraceRequest(three, { maxSpansPerExport: 3, maxValueDepth: 32 }).spans).toHaveLength(3);
    expect(() => decodeJsonTraceRequest(three, { maxSpansPerExport: 2, maxValueDepth: 32 })).toThrow(/exceeds the limit of 2 spans/);
  });
});
