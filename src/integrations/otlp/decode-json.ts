import { ImmuneError } from '../../domain/errors.js';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits, type DecodedTraceExport, type OtlpKeyValues, type OtlpResource, type OtlpSpan, type OtlpValue } from './otlp-types.js';

/*
 * OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
 * the protobuf JSON mapping with lowerCamelCase names, trace and span ids as hex
 * (not base64), enums as integers, int64 as strings or numbers. The protobuf JSON
 * mapping also lets parsers accept the original snake_case names and enum names,
 * so both are read. Unknown fields are ignored, as the spec requires.
 */

type Json = unknown;

class JsonShapeError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(reason);
  }
}

const SPAN_KINDS: Record<string, number> = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};
const STATUS_CODES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

/**
 * Decodes an application/json ExportTraceServiceRequest.
 * Throws IMM_ERR_MALFORMED_JSON when the body is not JSON, IMM_ERR_VALIDATION naming
 * the field path when the JSON does not have the OTLP shape.
 */
export function decodeJsonTraceRequest(body: Uint8Array | string, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): DecodedTraceExport {
  let root: Json;
  try {
    root = JSON.parse(typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch (e) {
    throw new ImmuneError('IMM_ERR_MALFORMED_JSON', `OTLP/JSON body is not valid JSON: ${(e as Error).message}`, {}, { cause: e });
  }
  try {
    return readRequest(root, limits);
  } catch (e) {
    if (e instanceof JsonShapeError) throw new ImmuneError('IMM_ERR_VALIDATION', `OTLP/JSON field '${e.path}' ${e.message}`, { field: e.path }, { cause: e });
    throw e;
  }
}

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a field under its lowerCamelCase or its snake_case name. */
function get(o: Record<string, Json>, camel: string, snake: string): Json {
  const v = o[camel];
  return v === undefined ? o[snake] : v;
}

function objectAt(v: Json, path: string): Record<string, Json> {
  if (!isObject(v)) throw new JsonShapeError(path, 'must be an object');
  return v;
}

function arrayAt(v: Json, path: string): Json[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new JsonShapeError(path, 'must be an array');
  return v;
}

function stringAt(v: Json, path: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new JsonShapeError(path, 'must be a string');
  return v;
}

function hexAt(v: Json, path: string): string {
  const s = stringAt(v, path);
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(s)) throw new JsonShapeError(path, 'must be a hex string (OTLP/JSON encodes ids as hex, not base64)');
  return s.toLowerCase();
}

function uint64At(v: Json, path: string): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'string' && /^\d{1,20}$/.test(v)) {
    const n = BigInt(v);
    if (n < 2n ** 64n) return n;
  }
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  throw new JsonShapeError(path, 'must be a non-negative integer (string or number)');
}

function enumAt(v: Json, names: Record<string, number>, path: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && v in names) return names[v];
  throw new JsonShapeError(path, 'must be an enum integer');
}

function readRequest(root: Json, limits: DecodeLimits): DecodedTraceExport {
  const req = objectAt(root, '(body)');
  const spans: OtlpSpan[] = [];
  arrayAt(get(req, 'resourceSpans', 'resource_spans'), 'resourceSpans').forEach((rsRaw, i) => {
    const path = `resourceSpans[${i}]`;
    const rs = objectAt(rsRaw, path);
    const resourceRaw = rs.resource;
    const resource: OtlpResource = {
      attributes: resourceRaw === undefined || resourceRaw === null ? new Map() : readAttributes(objectAt(resourceRaw, `${path}.resource`).attributes, `${path}.resource.attributes`, 0, limits),
    };
    // instrumentationLibrarySpans: the name before OTLP 0.19, the same layout as scopeSpans.
    const scopes = [...arrayAt(get(rs, 'scopeSpans', 'scope_spans'), `${path}.scopeSpans`), ...arrayAt(get(rs, 'instrumentationLibrarySpans', 'instrumentation_library_spans'), `${path}.instrumentationLibrarySpans`)];
    scopes.forEach((ssRaw, j) => {
      const ssPath = `${path}.scopeSpans[${j}]`;
      const ss = objectAt(ssRaw, ssPath);
      arrayAt(ss.spans, `${ssPath}.spans`).forEach((spanRaw, k) => {
        if (spans.length >= limits.maxSpansPerExport) throw new JsonShapeError(`${ssPath}.spans`, `exceeds the limit of ${limits.maxSpansPerExport} spans in one export`);
        spans.push(readSpan(spanRaw, `${ssPath}.spans[${k}]`, resource, limits));
      });
    });
  });
  return { spans };
}

function readSpan(raw: Json, path: string, resource: OtlpResource, limits: DecodeLimits): OtlpSpan {
  const s = objectAt(raw, path);
  const statusRaw = s.status;
  let status = { code: 0, message: '' };
  if (statusRaw !== undefined && statusRaw !== null) {
    const st = objectAt(statusRaw, `${path}.status`);
    status = { code: enumAt(st.code, STATUS_CODES, `${path}.status.code`), message: stringAt(st.message, `${path}.status.message`) };
  }
  return {
    traceId: hexAt(get(s, 'traceId', 'trace_id'), `${path}.traceId`),
    spanId: hexAt(get(s, 'spanId', 'span_id'), `${path}.spanId`),
    parentSpanId: hexAt(get(s, 'parentSpanId', 'parent_span_id'), `${path}.parentSpanId`),
    name: stringAt(s.name, `${path}.name`),
    kind: enumAt(s.kind, SPAN_KINDS, `${path}.kind`),
    startTimeUnixNano: uint64At(get(s, 'startTimeUnixNano', 'start_time_unix_nano'), `${path}.startTimeUnixNano`),
    endTimeUnixNano: uint64At(get(s, 'endTimeUnixNano', 'end_time_unix_nano'), `${path}.endTimeUnixNano`),
    attributes: readAttributes(s.attributes, `${path}.attributes`, 0, limits),
    status,
    resource,
  };
}

function readAttributes(raw: Json, path: string, depth: number, limits: DecodeLimits): OtlpKeyValues {
  const out = new Map<string, OtlpValue>();
  arrayAt(raw, path).forEach((kvRaw, i) => {
    const kv = objectAt(kvRaw, `${path}[${i}]`);
    const key = stringAt(kv.key, `${path}[${i}].key`);
    out.set(key, readAnyValue(kv.value, `${path}[${i}].value`, depth, limits));
  });
  return out;
}

function readAnyValue(raw: Json, path: string, depth: number, limits: DecodeLimits): OtlpValue {
  if (depth > limits.maxValueDepth) throw new JsonShapeError(path, `nests deeper than ${limits.maxValueDepth} levels`);
  if (raw === undefined || raw === null) return null;
  const v = objectAt(raw, path);
  const str = get(v, 'stringValue', 'string_value');
  if (str !== undefined) return stringAt(str, `${path}.stringValue`);
  const b = get(v, 'boolValue', 'bool_value');
  if (b !== undefined) {
    if (typeof b !== 'boolean') throw new JsonShapeError(`${path}.boolValue`, 'must be a boolean');
    return b;
  }
  const int = get(v, 'intValue', 'int_value');
  if (int !== undefined) {
    if (typeof int === 'number' && Number.isInteger(int)) return int;
    if (typeof int === 'string' && /^-?\d{1,20}$/.test(int)) return Number(BigInt.asIntN(64, BigInt(int)));
    throw new JsonShapeError(`${path}.intValue`, 'must be an integer (string or number)');
  }
  const dbl = get(v, 'doubleValue', 'double_value');
  if (dbl !== undefined) {
    if (typeof dbl === 'number') return dbl;
    // The protobuf JSON mapping spells non-finite doubles as strings.
    if (dbl === 'NaN') return Number.NaN;
    if (dbl === 'Infinity') return Number.POSITIVE_INFINITY;
    if (dbl === '-Infinity') return Number.NEGATIVE_INFINITY;
    if (typeof dbl === 'string' && dbl.trim() !== '' && Number.isFinite(Number(dbl))) return Number(dbl);
    throw new JsonShapeError(`${path}.doubleValue`, 'must be a number');
  }
  const arr = get(v, 'arrayValue', 'array_value');
  if (arr !== undefined) {
    const values = arr === null ? [] : arrayAt(objectAt(arr, `${path}.arrayValue`).values, `${path}.arrayValue.values`);
    return values.map((x, i) => readAnyValue(x, `${path}.arrayValue.values[${i}]`, depth + 1, limits));
  }
  const kvlist = get(v, 'kvlistValue', 'kvlist_value');
  if (kvlist !== undefined) {
    if (kvlist === null) return new Map();
    return readAttributes(objectAt(kvlist, `${path}.kvlistValue`).values, `${path}.kvlistValue.values`, depth + 1, limits);
  }
  const bytes = get(v, 'bytesValue', 'bytes_value');
  if (bytes !== undefined) {
    const s = stringAt(bytes, `${path}.bytesValue`);
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) throw new JsonShapeError(`${path}.bytesValue`, 'must be base64');
    return new Uint8Array(Buffer.from(s, 'base64'));
  }
  return null;
}
