import { closeSync, createReadStream, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import type { RegisteredAgent, SeedRecord } from './store.js';

/** A write that could not reach the store, kept on disk until it can. */
export type SpillOp =
  | { k: 'vitals'; run: string; rows: Vitals[] }
  | { k: 'events'; run: string; events: ImmuneEvent[] }
  | { k: 'agent'; run: string; agent: RegisteredAgent }
  | { k: 'records'; run: string; records: SeedRecord[] }
  | { k: 'run'; run: string };

export function recordsIn(op: SpillOp): number {
  switch (op.k) {
    case 'vitals':
      return op.rows.length;
    case 'events':
      return op.events.length;
    case 'records':
      return op.records.length;
    default:
      return 1;
  }
}

/**
 * An append-only NDJSON file of SpillOps plus a cursor file (byte offset of
 * the first op not yet delivered). Appends are fsynced before they count as
 * accepted; the cursor is replaced atomically after each delivery, so a crash
 * re-delivers at most the op in flight (stores ignore re-sent events by seq).
 * A torn last line (crash mid-append) is ignored.
 */
export class SpillFile {
  private readonly file: string;
  private readonly cursorFile: string;
  private fd: number | null = null;
  private offset = 0;
  /** Records waiting (from the cursor to the end). */
  private waiting = 0;
  private ops = 0;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = join(dir, 'queue.ndjson');
    this.cursorFile = join(dir, 'cursor.json');
  }

  /** Counts what an earlier process left behind; returns the records waiting and any damage found. */
  async load(): Promise<{ records: number; ops: number; damaged: number }> {
    this.offset = 0;
    this.waiting = 0;
    this.ops = 0;
    let damaged = 0;
    if (!existsSync(this.file)) return { records: 0, ops: 0, damaged };
    this.cutTornTail();
    try {
      this.offset = (JSON.parse(readFileSync(this.cursorFile, 'utf8')) as { offset: number }).offset;
    } catch {
      this.offset = 0;
    }
    for await (const { op } of this.read()) {
      if (op) {
        this.waiting += recordsIn(op);
        this.ops += 1;
      } else damaged += 1;
    }
    return { records: this.waiting, ops: this.ops, damaged };
  }

  /**
   * A crash mid-append leaves a last line without its newline. It was never
   * acknowledged, and the next append would glue onto it and be lost with
   * it, so it is cut off before anything is appended.
   */
  private cutTornTail(): void {
    const size = statSync(this.file).size;
    if (size === 0) return;
    const fd = openSync(this.file, 'r+');
    try {
      const chunk = Buffer.alloc(Math.min(size, 1 << 20));
      let end = size;
      for (;;) {
        const start = Math.max(0, end - chunk.length);
        const n = readSync(fd, chunk, 0, end - start, start);
        const nl = chunk.subarray(0, n).lastIndexOf(0x0a);
        if (nl >= 0) {
          const keep = start + nl + 1;
          if (keep < size) ftruncateSync(fd, keep);
          return;
        }
        if (start === 0) {
          ftruncateSync(fd, 0);
          return;
        }
        end = start;
      }
    } finally {
      closeSync(fd);
    }
  }

  get records(): number {
    return this.waiting;
  }

  get pendingOps(): number {
    return this.ops;
  }

  /** Appends one op durably (write + fsync). */
  append(op: SpillOp): void {
    if (this.fd === null) this.fd = openSync(this.file, 'a', 0o600);
    writeSync(this.fd, JSON.stringify(op) + '\n');
    fsyncSync(this.fd);
    this.waiting += recordsIn(op);
    this.ops += 1;
  }

  /** Ops from the cursor on, each with the offset just past it; a line that is not valid JSON comes back as op=null. */
  async *read(): AsyncGenerator<{ op: SpillOp | null; end: number }> {
    if (!existsSync(this.file)) return;
    const size = statSync(this.file).size;
    if (this.offset >= size) return;
    const stream = createReadStream(this.file, { start: this.offset, end: size - 1 });
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    let pos = this.offset;
    for await (const line of lines) {
      const end = pos + Buffer.byteLength(line) + 1;
      // The last line without its newline was torn by a crash mid-append: it was never acknowledged.
      if (end > size) break;
      pos = end;
      let op: SpillOp | null = null;
      try {
        op = JSON.parse(line) as SpillOp;
      } catch {
        op = null;
      }
      yield { op, end };
    }
  }

  /** Marks everything before `end` delivered. */
  advance(end: number, op: SpillOp | null): void {
    this.offset = end;
    if (op) {
      this.waiting -= recordsIn(op);
      this.ops -= 1;
    }
    const tmp = `${this.cursorFile}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    writeSync(fd, JSON.stringify({ offset: end }));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.cursorFile);
  }

  /** Everything delivered: start a fresh file. */
  clear(): void {
    this.close();
    rmSync(this.file, { force: true });
    rmSync(this.cursorFile, { force: true });
    this.offset = 0;
    this.waiting = 0;
    this.ops = 0;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
