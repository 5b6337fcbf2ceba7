/**
 * InfluxDB line protocol and InfluxQL literals: the only text the InfluxDB
 * adapter sends, built here so the escaping rules live in one tested place.
 * https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/
 */

export type FieldValue = number | boolean | string | { int: number };

export interface Point {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, FieldValue | null | undefined>;
  /** Microseconds since the epoch (the adapter writes with precision=u). */
  timeUs: number;
}

/** Measurements escape commas and spaces. */
function escMeasurement(s: string): string {
  return /[\\,\s]/.test(s) ? s.replace(/[\\,\s]/g, (c) => '\\' + c) : s;
}

/**
 * Tag keys/values and field keys escape commas, equals signs and spaces.
 * A newline cannot be represented in a tag at all, so callers only tag
 * values from restricted alphabets (agent and run ids, our own type names).
 */
const KEY_SPECIAL = /[,= \\\n\r]/;
export function escKey(s: string): string {
  if (!KEY_SPECIAL.test(s)) return s; // the common case: ids and names with nothing to escape
  if (/[\n\r]/.test(s)) throw new Error(`line protocol: a tag or key cannot contain a newline: ${JSON.stringify(s)}`);
  return s.replace(/[,= \\]/g, (c) => '\\' + c);
}

/** Field keys repeat on every point: escape each once. */
const keyCache = new Map<string, string>();
function fieldKey(k: string): string {
  let e = keyCache.get(k);
  if (e === undefined) {
    e = escKey(k);
    if (keyCache.size < 10_000) keyCache.set(k, e);
  }
  return e;
}

/** String field values are double-quoted; only the quote and the backslash are escaped (newlines are allowed inside quotes). */
export function escString(s: string): string {
  if (!s.includes('"') && !s.includes('\\')) return '"' + s + '"';
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

export function fieldValue(v: FieldValue): string {
  if (typeof v === 'string') return escString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'object') {
    if (!Number.isSafeInteger(v.int)) throw new Error(`line protocol: integer field out of range: ${v.int}`);
    return `${v.int}i`;
  }
  if (!Number.isFinite(v)) throw new Error(`line protocol: field value must be finite, got ${v}`);
  // Always a float: InfluxDB fixes a field's type on first write, and 3 vs 3.5 must not conflict.
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

/** One point as a line (no trailing newline). Empty tag values are omitted, null fields skipped. */
export function encodePoint(p: Point): string {
  let line = escMeasurement(p.measurement);
  // Tags sorted by key: InfluxDB's recommended order (faster series lookup on write).
  const tagKeys = Object.keys(p.tags);
  if (tagKeys.length > 1) tagKeys.sort();
  for (const k of tagKeys) {
    const v = p.tags[k];
    if (v !== '') line += ',' + fieldKey(k) + '=' + escKey(v);
  }
  let fields = '';
  for (const k in p.fields) {
    const v = p.fields[k];
    if (v !== null && v !== undefined) fields += (fields === '' ? '' : ',') + fieldKey(k) + '=' + fieldValue(v);
  }
  if (fields === '') throw new Error(`line protocol: point in ${p.measurement} has no fields`);
  if (!Number.isSafeInteger(p.timeUs)) throw new Error(`line protocol: bad timestamp ${p.timeUs}`);
  return line + ' ' + fields + ' ' + p.timeUs;
}

/** An InfluxQL string literal: single quotes, with backslash and quote escaped. */
export function qlString(s: string): string {
  return "'" + s.replace(/[\\']/g, (c) => '\\' + c) + "'";
}

/** An InfluxQL identifier (measurement, field, tag, database). */
export function qlIdent(s: string): string {
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

/** An InfluxQL time literal from epoch microseconds (InfluxQL integer times are nanoseconds). */
export function qlTimeUs(us: number): string {
  return `${Math.floor(us)}000`;
}
