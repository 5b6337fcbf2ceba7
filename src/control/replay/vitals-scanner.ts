import {
  ChunkWriter,
  EMPTY_STRING,
  EXTERNAL,
  fnv1a,
  FNV_OFFSET,
  N_COST,
  N_INPUT_TOKENS,
  N_LATENCY,
  N_OUTPUT_TOKENS,
  N_RETRIES,
  N_TIMESTAMP,
  N_TOKEN_COUNT,
  N_TOOL_CALLS,
  NUM_COLS,
  R_AGENT_ID,
  R_AGENT_TYPE,
  R_ERROR_TYPE,
  R_MCP_SERVERS,
  R_MODEL,
  R_PROMPT_HASH,
  R_PROVIDER,
  R_SUCCESS,
  R_TOOL_NAMES,
  REF_COLS,
} from './vitals-chunk.js';

/** scanLine results. */
export const UNSURE = 0;
export const RECORD = 1;
export const BLANK = 2;

/*
 * The vitals schema's limits (src/domain/vitals.ts), repeated here because that module loads typebox,
 * which costs 0.4 s of start-up; test/control/replay/vitals-scanner.test.ts fails if they drift apart.
 */
export const LIMITS = { agentId: 128, maxNumber: 1e12, agentType: 64, provider: 64, label: 128, mcpServers: 64, toolNames: 256, listItem: 128 } as const;

const K_ID = 0;
const K_LABEL = 1;
const K_TIME = 2;
const K_AMOUNT = 3;
const K_COUNT = 4;
const K_BOOL = 5;
const K_LIST = 6;

interface Field {
  name: string;
  kind: number;
  /** Column in num (numbers) or ref (everything else). */
  col: number;
  /** Longest string, or most list items. */
  max: number;
}

const FIELDS: Field[] = [
  { name: 'agent_id', kind: K_ID, col: R_AGENT_ID, max: LIMITS.agentId },
  { name: 'agent_type', kind: K_LABEL, col: R_AGENT_TYPE, max: LIMITS.agentType },
  { name: 'timestamp', kind: K_TIME, col: N_TIMESTAMP, max: 0 },
  { name: 'latency_ms', kind: K_AMOUNT, col: N_LATENCY, max: 0 },
  { name: 'input_tokens', kind: K_COUNT, col: N_INPUT_TOKENS, max: 0 },
  { name: 'output_tokens', kind: K_COUNT, col: N_OUTPUT_TOKENS, max: 0 },
  { name: 'token_count', kind: K_COUNT, col: N_TOKEN_COUNT, max: 0 },
  { name: 'cost', kind: K_AMOUNT, col: N_COST, max: 0 },
  { name: 'tool_calls', kind: K_COUNT, col: N_TOOL_CALLS, max: 0 },
  { name: 'retries', kind: K_COUNT, col: N_RETRIES, max: 0 },
  { name: 'success', kind: K_BOOL, col: R_SUCCESS, max: 0 },
  { name: 'model', kind: K_LABEL, col: R_MODEL, max: LIMITS.label },
  { name: 'provider', kind: K_LABEL, col: R_PROVIDER, max: LIMITS.provider },
  { name: 'error_type', kind: K_LABEL, col: R_ERROR_TYPE, max: LIMITS.label },
  { name: 'prompt_hash', kind: K_LABEL, col: R_PROMPT_HASH, max: LIMITS.label },
  { name: 'mcp_servers', kind: K_LIST, col: R_MCP_SERVERS, max: LIMITS.mcpServers },
  { name: 'tool_names', kind: K_LIST, col: R_TOOL_NAMES, max: LIMITS.toolNames },
];
const F_AGENT_TYPE = 1;
const F_TIMESTAMP = 2;
const F_LATENCY = 3;
const F_INPUT = 4;
const F_OUTPUT = 5;
const F_TOKENS = 6;
const F_COST = 7;
const F_TOOLS = 8;
const F_RETRIES = 9;
const F_SUCCESS = 10;
const F_MODEL = 11;
const F_PROVIDER = 12;
const F_ERROR = 13;
const F_PROMPT = 14;
const F_MCP = 15;
const F_TOOL_NAMES = 16;

const KIND = Int32Array.from(FIELDS, (f) => f.kind);
const COL = Int32Array.from(FIELDS, (f) => f.col);
const MAX = Int32Array.from(FIELDS, (f) => f.max);
const NAMES = FIELDS.map((f) => Buffer.from(f.name, 'latin1'));
/** Field indexes by name length, so a key is compared with two or three names at most. */
const BY_LENGTH: number[][] = Array.from({ length: 16 }, (_, len) => FIELDS.flatMap((f, i) => (f.name.length === len ? [i] : [])));

/** Bytes allowed in agent_id (AGENT_ID_PATTERN: [A-Za-z0-9._:@/-]). */
const ID_BYTE = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@/-') ID_BYTE[c.charCodeAt(0)] = 1;

/** 10^0 … 10^22: every one is an exact double, which makes the fast decimal conversion below exact. */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;

// Scanner state: the line being read and the position in it (module-level: the scanner is not re-entrant).
// Always a Buffer in practice; starting with one keeps element access monomorphic.
let buf: Uint8Array = Buffer.alloc(0);
let end = 0;
let pos = 0;
/** Start and end of the last string's contents. */
let strStart = 0;
let strEnd = 0;

/**
 * Reads one line of replay input, buf[start, end), straight from its bytes
 * into the next row of `w` — the fast path for plain records: no escapes,
 * ASCII strings, each known field at most once, every value within the
 * schema. Anything else returns UNSURE with nothing committed, and the caller
 * reads the line the reference way (parseLine). So it accepts only lines
 * parseLine accepts, and gives the same values: the numbers are the doubles
 * JSON.parse gives, and the defaults are parseVitals's. Unknown fields are
 * skipped when their JSON is plainly valid, as parseVitals ignores them.
 */
export function scanLine(bytes: Uint8Array, start: number, stop: number, w: ChunkWriter): number {
  // The hot path works on locals (module variables live in memory, locals in registers: 2× faster
  // measured) and hands over to the helpers through `pos` only for what is rare.
  const b = bytes;
  const e = stop;
  buf = bytes;
  end = stop;
  let p = start;
  while (p < e && isWs(b[p])) p++;
  if (p === e) return BLANK;
  if (b[p] !== 0x7b) return UNSURE;
  p++;
  const num = w.num;
  const ref = w.ref;
  const n = w.records * NUM_COLS;
  const r = w.records * REF_COLS;
  let seen = 0;
  let errorTypeEmpty = true;
  let k = 0;
  for (;;) {
    while (p < e && isWs(b[p])) p++;
    if (p >= e || b[p] !== QUOTE) return UNSURE;
    p++;
    // Records of one file nearly always list their fields in the same order: try the field that came
    // at this place in the previous record first.
    let f = k < shape.length ? shape[k] : -1;
    if (f >= 0) {
      const name = NAMES[f];
      const len = name.length;
      let j = 0;
      if (p + len < e && b[p + len] === QUOTE) while (j < len && b[p + j] === name[j]) j++;
      if (j === len) p += len + 1;
      else f = -1;
    }
    if (f < 0) {
      pos = p;
      if (!readString()) return UNSURE;
      p = pos;
      f = fieldOf(strStart, strEnd);
      if (f >= 0) {
        while (shape.length <= k) shape.push(-1);
        shape[k] = f;
      }
    }
    k++;
    while (p < e && isWs(b[p])) p++;
    if (p >= e || b[p] !== COLON) return UNSURE;
    p++;
    while (p < e && isWs(b[p])) p++;
    if (f < 0) {
      pos = p;
      if (!skipValue(0)) return UNSURE;
      p = pos;
    } else {
      // JSON.parse keeps the last of duplicate keys; rare enough to leave to it.
      if (seen & (1 << f)) return UNSURE;
      seen |= 1 << f;
      const kind = KIND[f];
      if (kind === K_ID || kind === K_LABEL) {
        if (p >= e || b[p] !== QUOTE) return UNSURE;
        const s0 = ++p;
        let h = FNV_OFFSET;
        if (kind === K_ID) {
          for (let c; p < e && ID_BYTE[(c = b[p])] === 1; p++) h = fnv1a(h, c);
        } else {
          for (let c; p < e && (c = b[p]) >= 0x20 && c < 0x7f && c !== QUOTE && c !== BACKSLASH; p++) h = fnv1a(h, c);
        }
        if (p >= e || b[p] !== QUOTE) return UNSURE;
        const len = p - s0;
        if (len > MAX[f] || (kind === K_ID && len === 0)) return UNSURE;
        if (f === F_ERROR) errorTypeEmpty = len === 0;
        ref[r + COL[f]] = kind === K_ID ? w.internAgent(b, s0, p, h) : w.internBytes(b, s0, p, h);
        p++;
      } else if (kind === K_BOOL) {
        pos = p;
        const v = readBoolean();
        if (v < 0) return UNSURE;
        p = pos;
        ref[r + COL[f]] = v;
      } else if (kind === K_LIST) {
        pos = p;
        const id = readList(w, MAX[f]);
        if (id === -2) return UNSURE;
        p = pos;
        ref[r + COL[f]] = id;
      } else {
        // The usual number, digits with an optional fraction, is read here; readNumber does the rest.
        const s0 = p;
        let m = 0;
        let digits = 0;
        let scale = 0;
        let c = p < e ? b[p] : 0;
        if (c === 0x30) p++;
        else if (c >= 0x31 && c <= 0x39) {
          do {
            m = m * 10 + (c - 0x30);
            digits++;
            p++;
          } while (p < e && (c = b[p]) >= 0x30 && c <= 0x39);
        } else return UNSURE;
        if (p < e && b[p] === 0x2e) {
          p++;
          while (p < e && (c = b[p]) >= 0x30 && c <= 0x39) {
            m = m * 10 + (c - 0x30);
            digits++;
            scale++;
            p++;
          }
          if (scale === 0) return UNSURE;
        }
        let x: number;
        if (digits > 15 || (p < e && (b[p] | 0x20) === 0x65)) {
          pos = s0;
          x = readNumber();
          p = pos;
        } else {
          x = scale === 0 ? m : m / POW10[scale];
        }
        // NaN: not a plain non-negative JSON number. Each check is the schema's for the field.
        if (x !== x) return UNSURE;
        if (kind === K_TIME ? x === Infinity : kind === K_COUNT ? !(Number.isInteger(x) && x <= LIMITS.maxNumber) : !(x <= LIMITS.maxNumber)) return UNSURE;
        num[n + COL[f]] = x;
      }
    }
    while (p < e && isWs(b[p])) p++;
    if (p >= e) return UNSURE;
    const c = b[p++];
    if (c === COMMA) continue;
    if (c === 0x7d) break;
    return UNSURE;
  }
  pos = p;
  skipWs();
  if (pos !== end || (seen & 1) === 0) return UNSURE;
  // parseVitals's defaults for what the record left out.
  if ((seen & (1 << F_AGENT_TYPE)) === 0) ref[r + R_AGENT_TYPE] = EXTERNAL;
  if ((seen & (1 << F_TIMESTAMP)) === 0) num[n + N_TIMESTAMP] = NaN;
  if ((seen & (1 << F_LATENCY)) === 0) num[n + N_LATENCY] = 0;
  if ((seen & (1 << F_INPUT)) === 0) num[n + N_INPUT_TOKENS] = 0;
  if ((seen & (1 << F_OUTPUT)) === 0) num[n + N_OUTPUT_TOKENS] = 0;
  if ((seen & (1 << F_TOKENS)) === 0) num[n + N_TOKEN_COUNT] = num[n + N_INPUT_TOKENS] + num[n + N_OUTPUT_TOKENS];
  if ((seen & (1 << F_COST)) === 0) num[n + N_COST] = 0;
  if ((seen & (1 << F_TOOLS)) === 0) num[n + N_TOOL_CALLS] = 0;
  if ((seen & (1 << F_RETRIES)) === 0) num[n + N_RETRIES] = 0;
  if ((seen & (1 << F_SUCCESS)) === 0) ref[r + R_SUCCESS] = errorTypeEmpty ? 1 : 0;
  if ((seen & (1 << F_MODEL)) === 0) ref[r + R_MODEL] = EMPTY_STRING;
  if ((seen & (1 << F_PROVIDER)) === 0) ref[r + R_PROVIDER] = EMPTY_STRING;
  if ((seen & (1 << F_ERROR)) === 0) ref[r + R_ERROR_TYPE] = EMPTY_STRING;
  if ((seen & (1 << F_PROMPT)) === 0) ref[r + R_PROMPT_HASH] = EMPTY_STRING;
  if ((seen & (1 << F_MCP)) === 0) ref[r + R_MCP_SERVERS] = -1;
  if ((seen & (1 << F_TOOL_NAMES)) === 0) ref[r + R_TOOL_NAMES] = -1;
  w.commit();
  return RECORD;
}

// The helpers below copy the module-level state into locals for their loops, for the same reason.

function skipWs(): void {
  const b = buf;
  const e = end;
  let p = pos;
  while (p < e) {
    const c = b[p];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) break;
    p++;
  }
  pos = p;
}

/** The order of the known fields in the last record read (-1: an unknown field was there). */
const shape: number[] = [];

/** Index of the known field named buf[start, stop), or -1. */
function fieldOf(start: number, stop: number): number {
  const len = stop - start;
  if (len >= BY_LENGTH.length) return -1;
  const candidates = BY_LENGTH[len];
  for (let k = 0; k < candidates.length; k++) {
    const name = NAMES[candidates[k]];
    let j = 0;
    while (j < len && name[j] === buf[start + j]) j++;
    if (j === len) return candidates[k];
  }
  return -1;
}

/**
 * Reads the rest of a key or list item whose opening quote was consumed:
 * printable ASCII without escapes. Sets strStart and strEnd; false when the
 * string is anything else.
 */
function readString(): boolean {
  const b = buf;
  const e = end;
  for (let p = pos; p < e; p++) {
    const c = b[p];
    if (c === QUOTE) {
      strStart = pos;
      strEnd = p;
      pos = p + 1;
      return true;
    }
    if (c < 0x20 || c >= 0x7f || c === BACKSLASH) return false;
  }
  return false;
}

/** 1 for true, 0 for false, -1 for anything else. */
function readBoolean(): number {
  if (pos + 4 <= end && buf[pos] === 0x74 && buf[pos + 1] === 0x72 && buf[pos + 2] === 0x75 && buf[pos + 3] === 0x65) {
    pos += 4;
    return 1;
  }
  if (pos + 5 <= end && buf[pos] === 0x66 && buf[pos + 1] === 0x61 && buf[pos + 2] === 0x6c && buf[pos + 3] === 0x73 && buf[pos + 4] === 0x65) {
    pos += 5;
    return 0;
  }
  return -1;
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * A non-negative JSON number as the double JSON.parse gives, or NaN when the
 * text is not one (a minus sign is left to the reference path too: "-0" is
 * valid and would need care). Up to 15 significant digits with a decimal
 * exponent within ±22 is converted exactly here — both the digits and the
 * power of ten are exact doubles, so one multiplication or division rounds
 * correctly, as V8's conversion does (Clinger's fast path); anything longer
 * goes through Number(), which agrees with JSON.parse on every JSON number.
 */
function readNumber(): number {
  const b = buf;
  const e = end;
  const start = pos;
  let p = pos;
  let m = 0;
  let digits = 0;
  if (p >= e) return NaN;
  let c = b[p];
  if (c === 0x30) {
    p++;
  } else if (c >= 0x31 && c <= 0x39) {
    do {
      m = m * 10 + (c - 0x30);
      digits++;
      p++;
    } while (p < e && isDigit((c = b[p])));
  } else {
    return NaN;
  }
  let scale = 0;
  if (p < e && b[p] === 0x2e) {
    p++;
    if (p >= e || !isDigit(b[p])) return NaN;
    do {
      m = m * 10 + (b[p] - 0x30);
      digits++;
      scale++;
      p++;
    } while (p < e && isDigit(b[p]));
  }
  let exp = 0;
  if (p < e && (b[p] === 0x65 || b[p] === 0x45)) {
    p++;
    let sign = 1;
    if (p < e && (b[p] === 0x2b || b[p] === 0x2d)) sign = b[p++] === 0x2d ? -1 : 1;
    if (p >= e || !isDigit(b[p])) return NaN;
    do {
      if (exp < 100000) exp = exp * 10 + (b[p] - 0x30);
      p++;
    } while (p < e && isDigit(b[p]));
    exp *= sign;
  }
  pos = p;
  const e10 = exp - scale;
  if (digits <= 15 && e10 >= -22 && e10 <= 22) return e10 >= 0 ? m * POW10[e10] : m / POW10[-e10];
  return Number(Buffer.from(b.buffer, b.byteOffset + start, p - start).toString('latin1'));
}

/**
 * A list of labels: its id in the chunk (-1 for []), or -2 when it is not a
 * plain list of at most `maxItems` printable-ASCII strings of at most 128 characters.
 */
function readList(w: ChunkWriter, maxItems: number): number {
  if (pos >= end || buf[pos] !== 0x5b) return -2;
  const listStart = pos;
  pos++;
  skipWs();
  if (pos < end && buf[pos] === 0x5d) {
    pos++;
    return -1;
  }
  const spans: number[] = [];
  for (;;) {
    if (pos >= end || buf[pos] !== QUOTE) return -2;
    pos++;
    if (!readString() || strEnd - strStart > LIMITS.listItem) return -2;
    spans.push(strStart, strEnd);
    if (spans.length / 2 > maxItems) return -2;
    skipWs();
    if (pos >= end) return -2;
    const c = buf[pos++];
    if (c === 0x5d) break;
    if (c !== COMMA) return -2;
    skipWs();
  }
  let h = FNV_OFFSET;
  for (let i = listStart; i < pos; i++) h = fnv1a(h, buf[i]);
  const bytes = buf;
  return w.internList(bytes, listStart, pos, h, () => {
    const items: string[] = [];
    for (let i = 0; i < spans.length; i += 2) items.push(Buffer.from(bytes.buffer, bytes.byteOffset + spans[i], spans[i + 1] - spans[i]).toString('latin1'));
    return items;
  });
}

/**
 * Skips the value of a field the schema does not know (parseVitals ignores
 * it), checking that it is valid JSON; false when unsure. Nesting is bounded
 * so a pathological line falls back instead of recursing deeply.
 */
function skipValue(depth: number): boolean {
  if (pos >= end || depth > 32) return false;
  const c = buf[pos];
  if (c === QUOTE) {
    pos++;
    return skipString();
  }
  if (c === 0x7b || c === 0x5b) {
    const close = c === 0x7b ? 0x7d : 0x5d;
    pos++;
    skipWs();
    if (pos < end && buf[pos] === close) {
      pos++;
      return true;
    }
    for (;;) {
      if (c === 0x7b) {
        if (pos >= end || buf[pos] !== QUOTE) return false;
        pos++;
        if (!skipString()) return false;
        skipWs();
        if (pos >= end || buf[pos] !== COLON) return false;
        pos++;
        skipWs();
      }
      if (!skipValue(depth + 1)) return false;
      skipWs();
      if (pos >= end) return false;
      const d = buf[pos++];
      if (d === close) return true;
      if (d !== COMMA) return false;
      skipWs();
    }
  }
  if (c === 0x74) return skipLiteral('true');
  if (c === 0x66) return skipLiteral('false');
  if (c === 0x6e) return skipLiteral('null');
  if (c === 0x2d) pos++;
  return !Number.isNaN(readNumber());
}

function skipLiteral(word: string): boolean {
  if (pos + word.length > end) return false;
  for (let i = 0; i < word.length; i++) if (buf[pos + i] !== word.charCodeAt(i)) return false;
  pos += word.length;
  return true;
}

/** Any JSON string (escapes checked; bytes ≥ 0x80 are characters after UTF-8 decoding, all allowed in JSON strings). */
function skipString(): boolean {
  while (pos < end) {
    const c = buf[pos++];
    if (c === QUOTE) return true;
    if (c < 0x20) return false;
    if (c === BACKSLASH) {
      if (pos >= end) return false;
      const e = buf[pos++];
      if (e === 0x75) {
        for (let i = 0; i < 4; i++, pos++) {
          const h = pos < end ? buf[pos] : 0;
          if (!(isDigit(h) || (h >= 0x41 && h <= 0x46) || (h >= 0x61 && h <= 0x66))) return false;
        }
      } else if (!(e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74)) {
        return false;
      }
    }
  }
  return false;
}
