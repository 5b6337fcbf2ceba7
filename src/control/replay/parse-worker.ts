/**
 * The parse half of the pipelined replay (see replay-file.ts), run in a worker
 * thread: reads the input, splits it into lines, validates each line and posts
 * the records to the engine thread in columnar chunks.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { ChunkRing, ChunkWriter } from './vitals-chunk.js';
import { RECORD, scanLine, UNSURE } from './vitals-scanner.js';
import type { ParseWorkerData, SourceMessage, WorkerMessage } from './replay-file.js';

const READ_BYTES = 256 * 1024;

const CONTINUE = 0;
const STOP = 1;
const NEED_PARSER = 2;

/**
 * Records in the n-th chunk: small at first, so the engine thread starts while this thread's code is
 * still cold (the first 8192 records take tens of milliseconds before the JIT has compiled the
 * scanner), then the ring slot's capacity.
 */
const chunkLimit = (n: number) => Math.min(ring.capacity, 256 << Math.min(n, 16));

type ParseLine = (typeof import('./parse-line.js'))['parseLine'];

const { control, ring: shared } = workerData as ParseWorkerData;
const ctl = new Int32Array(control);
const ring = new ChunkRing(shared.slots, shared.capacity, shared.memory);
const port = parentPort!;

function post(msg: WorkerMessage): void {
  port.postMessage(msg);
}

async function run(source: SourceMessage): Promise<void> {
  let fd: number;
  try {
    fd = 'path' in source ? openSync(source.path, 'r') : source.fd;
  } catch (err) {
    post({ type: 'error', message: (err as Error).message });
    return;
  }
  const slotOf = (chunk: number) => ({ num: ring.num[chunk % ring.slots], ref: ring.ref[chunk % ring.slots] });
  const w = new ChunkWriter(ring.capacity, slotOf(0));
  let buf = Buffer.allocUnsafe(READ_BYTES);
  let have = 0;
  let lineNo = 0;
  let sent = 0;
  // Loaded on the first line the scanner leaves to it: it brings typebox, 0.4 s of start-up.
  let parseLine: ParseLine | undefined;

  /** Posts the chunk in its slot, then waits until the next slot has been read by the engine thread; false when asked to stop. */
  const flush = (): boolean => {
    const { records, agents, firstAgent, strings, firstString, lists, malformed } = w.take(slotOf(sent + 1));
    post({ type: 'chunk', slot: sent % ring.slots, records, agents, firstAgent, strings, firstString, lists, malformed });
    sent += 1;
    for (let consumed; sent - (consumed = Atomics.load(ctl, 0)) >= ring.slots && Atomics.load(ctl, 1) === 0; ) Atomics.wait(ctl, 0, consumed, 100);
    return Atomics.load(ctl, 1) === 0;
  };

  /** One line, buf[start, end): CONTINUE, STOP (the engine thread asked), or NEED_PARSER (nothing done; load it and call again). */
  const line = (start: number, end: number): number => {
    const r = scanLine(buf, start, end, w);
    if (r === UNSURE) {
      if (parseLine === undefined) return NEED_PARSER;
      // NaN marks "no timestamp": the engine thread knows the replay clock and fills it in.
      const v = parseLine(buf.toString('utf8', start, end), NaN);
      lineNo += 1;
      if (typeof v === 'string') w.addMalformed(lineNo, v);
      else if (v !== null) w.addVitals(v, !Number.isNaN(v.timestamp));
    } else {
      lineNo += 1;
    }
    return w.records < chunkLimit(sent) || flush() ? CONTINUE : STOP;
  };
  /** `line` without a per-line await: the parser is loaded at most once. */
  const lineOrLoad = async (start: number, end: number): Promise<number> => {
    parseLine = (await import('./parse-line.js')).parseLine;
    return line(start, end);
  };

  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, have, buf.length - have, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          // A non-blocking stdin with nothing to read yet.
          Atomics.wait(ctl, 1, 0, 5);
          continue;
        }
        post({ type: 'error', message: (err as Error).message });
        return;
      }
      if (n === 0) break;
      have += n;
      const view = buf.subarray(0, have);
      let start = 0;
      let nl = view.indexOf(10, start);
      while (nl !== -1) {
        // "\r\n" endings: the "\r" belongs to the line break.
        const stop = nl > start && buf[nl - 1] === 13 ? nl - 1 : nl;
        let status = line(start, stop);
        if (status === NEED_PARSER) status = await lineOrLoad(start, stop);
        if (status === STOP) return;
        start = nl + 1;
        nl = view.indexOf(10, start);
      }
      if (start > 0) buf.copy(buf, 0, start, have);
      have -= start;
      if (have === buf.length) {
        // A line longer than the buffer: read it whole.
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
    }
    // The last line may lack its newline (and then keeps a trailing "\r", as the line reader does).
    if (have > 0) {
      let status = line(0, have);
      if (status === NEED_PARSER) status = await lineOrLoad(0, have);
      if (status === STOP) return;
    }
    if (!w.empty && !flush()) return;
    post({ type: 'end' });
  } finally {
    if ('path' in source) closeSync(fd);
  }
}

// The input comes in the first message: the thread may be started before the command line is read.
port.once('message', (source: SourceMessage) => void run(source));
