/**
 * A bounds-checked reader for the protobuf wire format, just large enough for the
 * OTLP trace messages.
 *
 * Why hand-written: the product has no protobuf runtime among its dependencies
 * (protobufjs only arrives transitively inside the OpenTelemetry exporters), and
 * generated code would need the .proto files plus a build step. The OTLP trace
 * messages use four wire types and a few dozen fields, which a reader that checks
 * every length against the buffer covers completely. Every problem is reported as
 * a ProtobufError carrying the byte offset, never as an out-of-range read.
 */

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

const WIRE_NAMES = ['varint', 'i64', 'len', 'group start', 'group end', 'i32', '6', '7'];

/** Malformed wire data; `offset` is the byte where reading failed. */
export class ProtobufError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'ProtobufError';
  }
}

const TWO_32 = 4294967296;

export class ProtobufReader {
  pos: number;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  /** Reads a field key; returns field number and wire type. */
  key(): { field: number; wire: number } {
    const at = this.pos;
    const k = this.varint();
    const field = Math.floor(k / 8);
    const wire = k % 8;
    if (field === 0 || field > 536870911) throw new ProtobufError(`invalid field number ${field}`, at);
    if (wire !== WIRE_VARINT && wire !== WIRE_I64 && wire !== WIRE_LEN && wire !== WIRE_I32) {
      throw new ProtobufError(`unsupported wire type ${wire} (${WIRE_NAMES[wire]}) for field ${field}`, at);
    }
    return { field, wire };
  }

  /**
   * Reads a varint of up to 10 bytes as an unsigned number. Exact below 2^53,
   * which covers every counter, enum and length the receiver uses; larger values
   * (int64 attributes near the top of the range) lose low bits, not magnitude.
   */
  varint(): number {
    const at = this.pos;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufError('truncated varint', at);
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new ProtobufError('varint longer than 10 bytes', at);
  }

  /**
   * Reads a varint as a two's-complement int64 (negative values use all 10 bytes,
   * so the bits are gathered exactly in a bigint before converting).
   */
  int64(): number {
    const at = this.pos;
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufError('truncated varint', at);
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return Number(BigInt.asIntN(64, result));
      shift += 7n;
    }
    throw new ProtobufError('varint longer than 10 bytes', at);
  }

  bool(): boolean {
    return this.varint() !== 0;
  }

  /** Reads a fixed64 exactly (timestamps in nanoseconds need all 64 bits). */
  fixed64(): bigint {
    const at = this.need(8);
    const lo = this.u32le(at);
    const hi = this.u32le(at + 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  fixed32(): number {
    const at = this.need(4);
    return this.u32le(at);
  }

  double(): number {
    const at = this.need(8);
    return new DataView(this.buf.buffer, this.buf.byteOffset + at, 8).getFloat64(0, true);
  }

  /** Reads a length prefix and returns the [start, end) range of the payload, advancing past it. */
  lengthDelimited(): { start: number; end: number } {
    const at = this.pos;
    const len = this.varint();
    if (len > this.end - this.pos) throw new ProtobufError(`length ${len} runs past the end of the enclosing message (${this.end - this.pos} bytes left)`, at);
    const start = this.pos;
    this.pos += len;
    return { start, end: this.pos };
  }

  /** A reader over an embedded message. */
  message(): ProtobufReader {
    const { start, end } = this.lengthDelimited();
    return new ProtobufReader(this.buf, start, end);
  }

  /** Protobuf strings must be UTF-8; invalid sequences become U+FFFD rather than failing the whole export. */
  string(): string {
    const { start, end } = this.lengthDelimited();
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + start, end - start).toString('utf8');
  }

  bytes(): Uint8Array {
    const { start, end } = this.lengthDelimited();
    return this.buf.subarray(start, end);
  }

  /** Skips a field of an unknown number, as protobuf requires for forward compatibility. */
  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.need(8);
        return;
      case WIRE_LEN:
        this.lengthDelimited();
        return;
      case WIRE_I32:
        this.need(4);
        return;
      default:
        throw new ProtobufError(`cannot skip wire type ${wire}`, this.pos);
    }
  }

  /** Throws unless a known field arrived with the wire type its declaration implies. */
  expect(wire: number, expected: number, fieldName: string): void {
    if (wire !== expected) throw new ProtobufError(`field ${fieldName} has wire type ${WIRE_NAMES[wire]}, expected ${WIRE_NAMES[expected]}`, this.pos);
  }

  private need(n: number): number {
    if (this.end - this.pos < n) throw new ProtobufError(`truncated: needs ${n} bytes, ${this.end - this.pos} left`, this.pos);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private u32le(at: number): number {
    const b = this.buf;
    return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)) + b[at + 3] * (TWO_32 / 256);
  }
}
