import { ImmuneError } from '../../domain/errors.js';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits, type DecodedTraceExport, type OtlpKeyValues, type OtlpResource, type OtlpSpan, type OtlpValue } from './otlp-types.js';
import { ProtobufError, ProtobufReader, WIRE_I64, WIRE_LEN, WIRE_VARINT, WIRE_I32 } from './protobuf-reader.js';

/*
 * Field numbers from opentelemetry-proto (collector/trace/v1/trace_service.proto,
 * trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto).
 * Fields not listed (trace_state, flags, events, links, scope, schema_url,
 * dropped counts) are skipped.
 */

/** A cap from DecodeLimits was exceeded. */
class LimitError extends Error {}

/** Wraps a failure with the message path where it happened, e.g. resource_spans[0].scope_spans[1].spans[7]. */
class PathError extends Error {
  constructor(
    readonly path: string,
    readonly inner: ProtobufError | LimitError,
  ) {
    super(inner.message);
  }
}

function at<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ProtobufError || e instanceof LimitError) throw new PathError(path, e);
    if (e instanceof PathError) throw new PathError(`${path}.${e.path}`, e.inner);
    throw e;
  }
}

/**
 * Decodes an application/x-protobuf ExportTraceServiceRequest.
 * Throws IMM_ERR_VALIDATION naming the byte offset and the field path on malformed input.
 */
export function decodeProtobufTraceRequest(body: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): DecodedTraceExport {
  const spans: OtlpSpan[] = [];
  const r = new ProtobufReader(body);
  let index = 0;
  try {
    while (!r.atEnd()) {
      const { field, wire } = r.key();
      if (field === 1) {
        r.expect(wire, WIRE_LEN, 'resource_spans');
        const i = index++;
        at(`resource_spans[${i}]`, () => readResourceSpans(r.message(), spans, limits));
      } else r.skip(wire);
    }
  } catch (e) {
    const path = e instanceof PathError ? e.path : '';
    const inner = e instanceof PathError ? e.inner : e;
    const where = path === '' ? '' : ` in ${path}`;
    const details = { field: path === '' ? '(body)' : path };
    if (inner instanceof ProtobufError) throw new ImmuneError('IMM_ERR_VALIDATION', `malformed OTLP protobuf at byte ${inner.offset}${where}: ${inner.message}`, details, { cause: e });
    if (inner instanceof LimitError) throw new ImmuneError('IMM_ERR_VALIDATION', `OTLP export refused${where}: ${inner.message}`, details, { cause: e });
    throw e;
  }
  return { spans };
}

function readResourceSpans(r: ProtobufReader, out: OtlpSpan[], limits: DecodeLimits): void {
  const attributes = new Map<string, OtlpValue>();
  const resource: OtlpResource = { attributes };
  let scopeIndex = 0;
  while (!r.atEnd()) {
    const { field, wire } = r.key();
    if (field === 1) {
      r.expect(wire, WIRE_LEN, 'resource');
      at('resource', () => readResource(r.message(), attributes, limits));
    } else if (field === 2 || field === 1000) {
      // 1000: instrumentation_library_spans of OTLP before 0.19, the same layout as ScopeSpans.
      r.expect(wire, WIRE_LEN, 'scope_spans');
      const i = scopeIndex++;
      at(`scope_spans[${i}]`, () => readScopeSpans(r.message(), resource, out, limits));
    } else r.skip(wire);
  }
}

function readResource(r: ProtobufReader, attributes: Map<string, OtlpValue>, limits: DecodeLimits): void {
  while (!r.atEnd()) {
    const { field, wire } = r.key();
    if (field === 1) {
      r.expect(wire, WIRE_LEN, 'attributes');
      readKeyValue(r.message(), attributes, 0, limits);
    } else r.skip(wire);
  }
}

function readScopeSpans(r: ProtobufReader, resource: OtlpResource, out: OtlpSpan[], limits: DecodeLimits): void {
  let spanIndex = 0;
  while (!r.atEnd()) {
    const { field, wire } = r.key();
    if (field === 2) {
      r.expect(wire, WIRE_LEN, 'spans');
      if (out.length >= limits.maxSpansPerExport) throw new LimitError(`more than ${limits.maxSpansPerExport} spans in one export`);
      const i = spanIndex++;
      out.push(at(`spans[${i}]`, () => readSpan(r.message(), resource, limits)));
    } else r.skip(wire);
  }
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function readSpan(r: ProtobufReader, resource: OtlpResource, limits: DecodeLimits): OtlpSpan {
  const attributes = new Map<string, OtlpValue>();
  const span: OtlpSpan = {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    name: '',
    kind: 0,
    startTimeUnixNano: 0n,
    endTimeUnixNano: 0n,
    attributes,
    status: { code: 0, message: '' },
    resource,
  };
  while (!r.atEnd()) {
    const { field, wire } = r.key();
    switch (field) {
      case 1:
        r.expect(wire, WIRE_LEN, 'trace_id');
        span.traceId = hex(r.bytes());
        break;
      case 2:
        r.expect(wire, WIRE_LEN, 'span_id');
        span.spanId = hex(r.bytes());
        break;
      case 4:
        r.expect(wire, WIRE_LEN, 'parent_span_id');
        span.parentSpanId = hex(r.bytes());
        break;
      case 5:
        r.expect(wire, WIRE_LEN, 'name');
        span.name = r.string();
        break;
      case 6:
        r.expect(wire, WIRE_VARINT, 'kind');
        span.kind = r.varint();
        break;
      case 7:
        r.expect(wire, WIRE_I64, 'start_time_unix_nano');
        span.startTimeUnixNano = r.fixed64();
        break;
      case 8:
        r.expect(wire, WIRE_I64, 'end_time_unix_nano');
        span.endTimeUnixNano = r.fixed64();
        break;
      case 9:
        r.expect(wire, WIRE_LEN, 'attributes');
        readKeyValue(r.message(), attributes, 0, limits);
        break;
      case 15:
        r.expect(wire, WIRE_LEN, 'status');
        span.status = readStatus(r.message());
        break;
      case 16:
        r.expect(wire, WIRE_I32, 'flags');
        r.fixed32();
        break;
      default:
        r.skip(wire);
    }
  }
  return span;
}

function readStatus(r: ProtobufReader): { code: number; message: string } {
  const status = { code: 0, message: '' };
  while (!r.atEnd()) {
    const { field, wire } = r.key();
    if (field === 2) {
      r.expect(wire, WIRE_LEN, 'status.message');
      status.message = r.string();
    } else if (field === 3) {
      r.expect(wire, WIRE_VARINT, 'status.code');
      status.code = r.varint();
    } else r.skip(wire);
  }
  return status;
}

/** KeyValue → into `target`; a repeated key keeps the last value, as the OTel SDKs do. */
function readKeyValue(r: ProtobufReader, target: Map<string, OtlpValue>, depth: number, limits: DecodeLimits): void {
  let key = '';
  let value: OtlpValue = null;
  while (!r.atEnd()) {
    const { field, wire } = r.key();
    if (field === 1) {
      r.expect(wire, WIRE_LEN, 'key');
      key = r.string();
    } else if (field === 2) {
      r.expect(wire, WIRE_LEN, 'value');
      value = readAnyValue(r.message(), depth, limits);
    } else r.skip(wire);
  }
  target.set(key, value);
}

function readAnyValue(r: ProtobufReader, depth: number, limits: DecodeLimits): OtlpValue {
  if (depth > limits.maxValueDepth) throw new LimitError(`attribute values nested deeper than ${limits.maxValueDepth} levels`);
  let value: OtlpValue = null;
  while (!r.atEnd()) {
    const { field, wire } = r.key();
    switch (field) {
      case 1:
        r.expect(wire, WIRE_LEN, 'string_value');
        value = r.string();
        break;
      case 2:
        r.expect(wire, WIRE_VARINT, 'bool_value');
        value = r.bool();
        break;
      case 3:
        r.expect(wire, WIRE_VARINT, 'int_value');
        value = r.int64();
        break;
      case 4:
        r.expect(wire, WIRE_I64, 'double_value');
        value = r.double();
        break;
      case 5: {
        r.expect(wire, WIRE_LEN, 'array_value');
        const arr = r.message();
        const values: OtlpValue[] = [];
        while (!arr.atEnd()) {
          const k = arr.key();
          if (k.field === 1) {
            arr.expect(k.wire, WIRE_LEN, 'array_value.values');
            values.push(readAnyValue(arr.message(), depth + 1, limits));
          } else arr.skip(k.wire);
        }
        value = values;
        break;
      }
      case 6: {
        r.expect(wire, WIRE_LEN, 'kvlist_value');
        const list = r.message();
        const entries = new Map<string, OtlpValue>();
        while (!list.atEnd()) {
          const k = list.key();
          if (k.field === 1) {
            list.expect(k.wire, WIRE_LEN, 'kvlist_value.values');
            readKeyValue(list.message(), entries, depth + 1, limits);
          } else list.skip(k.wire);
        }
        value = entries as OtlpKeyValues;
        break;
      }
      case 7:
        r.expect(wire, WIRE_LEN, 'bytes_value');
        value = new Uint8Array(r.bytes()); // a copy: the request buffer is not kept alive by one attribute
        break;
      default:
        r.skip(wire);
    }
  }
  return value;
}
