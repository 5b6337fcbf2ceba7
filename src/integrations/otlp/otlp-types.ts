/**
 * The decoded form of an OTLP ExportTraceServiceRequest, identical for the
 * protobuf and the JSON encoding, flattened to one list of spans that each point
 * at their (shared) resource. Only what the GenAI mapping reads is kept: span
 * events and links are skipped by the decoders.
 */

/** An OTLP AnyValue. int64 becomes a number (exact below 2^53); an empty AnyValue is null. */
export type OtlpValue = string | number | boolean | Uint8Array | null | OtlpValue[] | OtlpKeyValues;
export type OtlpKeyValues = ReadonlyMap<string, OtlpValue>;

/** Status codes of opentelemetry.proto.trace.v1.Status. */
export const STATUS_UNSET = 0;
export const STATUS_OK = 1;
export const STATUS_ERROR = 2;

export interface OtlpResource {
  attributes: OtlpKeyValues;
}

export interface OtlpSpan {
  /** Lower-case hex; valid spans have 32 hex chars for the trace and 16 for the span. */
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: OtlpKeyValues;
  status: { code: number; message: string };
  resource: OtlpResource;
}

export interface DecodedTraceExport {
  spans: OtlpSpan[];
}

/** Caps that keep one hostile payload from costing unbounded CPU or stack. */
export interface DecodeLimits {
  /** Most spans accepted in one export (the whole export is refused above it). */
  maxSpansPerExport: number;
  /** Deepest nesting of array/kvlist attribute values. */
  maxValueDepth: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = Object.freeze({ maxSpansPerExport: 100_000, maxValueDepth: 32 });

const EMPTY_ATTRIBUTES: OtlpKeyValues = new Map();
export function emptyAttributes(): OtlpKeyValues {
  return EMPTY_ATTRIBUTES;
}
