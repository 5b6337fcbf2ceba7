/**
 * A protobuf writer for crafting OTLP test payloads byte by byte: valid ones with
 * every AnyValue kind, and broken ones the real SDK would never produce.
 */
export type Bytes = number[];

export function varint(n: number | bigint): Bytes {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: Bytes = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

export const key = (field: number, wire: number): Bytes => varint(field * 8 + wire);
export const len = (field: number, payload: Bytes | Uint8Array): Bytes => [...key(field, 2), ...varint(payload.length), ...payload];
export const str = (field: number, s: string): Bytes => len(field, [...Buffer.from(s, 'utf8')]);
export const vint = (field: number, n: number | bigint): Bytes => [...key(field, 0), ...varint(n)];
export function fixed64(field: number, n: bigint): Bytes {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return [...key(field, 1), ...b];
}
export function double(field: number, x: number): Bytes {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return [...key(field, 1), ...b];
}
export function fixed32(field: number, n: number): Bytes {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return [...key(field, 5), ...b];
}

export type Any = string | number | boolean | Uint8Array | Any[] | { [k: string]: Any } | { double: number } | { int: bigint };

export function anyValue(v: Any): Bytes {
  if (typeof v === 'string') return str(1, v);
  if (typeof v === 'boolean') return vint(2, v ? 1 : 0);
  if (typeof v === 'number') return Number.isInteger(v) ? vint(3, v) : double(4, v);
  if (v instanceof Uint8Array) return len(7, v);
  if (Array.isArray(v)) return len(5, v.flatMap((x) => len(1, anyValue(x))));
  if ('double' in v && typeof v.double === 'number') return double(4, v.double);
  if ('int' in v && typeof v.int === 'bigint') return vint(3, v.int);
  return len(6, Object.entries(v as Record<string, Any>).flatMap(([k, x]) => len(1, keyValue(k, x))));
}

export const keyValue = (k: string, v: Any): Bytes => [...str(1, k), ...len(2, anyValue(v))];

export interface SpanSpec {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  kind?: number;
  start?: bigint;
  end?: bigint;
  attributes?: Record<string, Any>;
  status?: { code: number; message?: string };
  /** Raw bytes appended inside the Span message (unknown fields, events…). */
  extra?: Bytes;
}

export function spanMessage(s: SpanSpec): Bytes {
  return [
    ...len(1, [...Buffer.from(s.traceId ?? '0af7651916cd43dd8448eb211c80319c', 'hex')]),
    ...len(2, [...Buffer.from(s.spanId ?? 'b7ad6b7169203331', 'hex')]),
    ...(s.parentSpanId ? len(4, [...Buffer.from(s.parentSpanId, 'hex')]) : []),
    ...str(5, s.name ?? 'span'),
    ...vint(6, s.kind ?? 1),
    ...fixed64(7, s.start ?? 1_700_000_000_000_000_000n),
    ...fixed64(8, s.end ?? 1_700_000_000_250_000_000n),
    ...Object.entries(s.attributes ?? {}).flatMap(([k, v]) => len(9, keyValue(k, v))),
    ...(s.status ? len(15, [...(s.status.message ? str(2, s.status.message) : []), ...vint(3, s.status.code)]) : []),
    ...(s.extra ?? []),
  ];
}

/** ExportTraceServiceRequest with one ResourceSpans (resource attributes) and one ScopeSpans. */
export function exportRequest(spans: SpanSpec[], resource: Record<string, Any> = { 'service.name': 'svc' }): Buffer {
  const resourceMsg = Object.entries(resource).flatMap(([k, v]) => len(1, keyValue(k, v)));
  const scopeSpans = [...len(1, str(1, 'scope')), ...spans.flatMap((s) => len(2, spanMessage(s)))];
  return Buffer.from(len(1, [...len(1, resourceMsg), ...len(2, scopeSpans)]));
}
