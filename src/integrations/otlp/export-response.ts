import type { OtlpEncoding } from './decode-request.js';

/*
 * Response bodies of OTLP/HTTP (https://opentelemetry.io/docs/specs/otlp/#otlphttp-response):
 * an ExportTraceServiceResponse on success, with partial_success when some spans
 * were not accepted, and a google.rpc.Status for protobuf error responses.
 */

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

function lengthDelimited(field: number, payload: Uint8Array): number[] {
  return [...varint((field << 3) | 2), ...varint(payload.length), ...payload];
}

function varintField(field: number, n: number): number[] {
  return [...varint(field << 3), ...varint(n)];
}

export interface PartialSuccess {
  rejectedSpans: number;
  errorMessage: string;
}

/** The body of a 200: empty when everything was accepted (as the spec recommends), partial_success otherwise. */
export function encodeExportResponse(encoding: OtlpEncoding, partial: PartialSuccess | undefined): { contentType: string; body: Buffer | string } {
  if (encoding === 'json') {
    // int64 is written as a string, per the protobuf JSON mapping.
    const body = partial === undefined ? {} : { partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage } };
    return { contentType: 'application/json', body: JSON.stringify(body) };
  }
  if (partial === undefined) return { contentType: 'application/x-protobuf', body: Buffer.alloc(0) };
  const inner = [...varintField(1, partial.rejectedSpans), ...lengthDelimited(2, Buffer.from(partial.errorMessage, 'utf8'))];
  return { contentType: 'application/x-protobuf', body: Buffer.from(lengthDelimited(1, Uint8Array.from(inner))) };
}

/** gRPC status codes used for HTTP error statuses (google.rpc.Code). */
function grpcCode(httpStatus: number): number {
  if (httpStatus === 401) return 16; // UNAUTHENTICATED
  if (httpStatus === 403) return 7; // PERMISSION_DENIED
  if (httpStatus === 429) return 8; // RESOURCE_EXHAUSTED
  if (httpStatus === 503) return 14; // UNAVAILABLE
  if (httpStatus >= 500) return 13; // INTERNAL
  return 3; // INVALID_ARGUMENT
}

/** A google.rpc.Status {code, message} for a protobuf client's error response. */
export function encodeRpcStatus(httpStatus: number, message: string): Buffer {
  return Buffer.from([...varintField(1, grpcCode(httpStatus)), ...lengthDelimited(2, Buffer.from(message, 'utf8'))]);
}
