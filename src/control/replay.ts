import { isAscii } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';
import { EventTimeReplayer, NONE, type Detection } from './replay/event-time-replayer.js';
import { parseLine } from './replay/parse-line.js';

export { EventTimeReplayer, ReplayAbort, type Detection, type ReplayOptions, type ReplaySummary } from './replay/event-time-replayer.js';

/**
 * The event-time replay fed one text line at a time (JSON.parse + parseVitals
 * on the calling thread). `immune replay` on a file uses replayFile
 * (./replay/replay-file.ts) instead, which parses in a worker thread and gives
 * the same output.
 */
export class Replayer extends EventTimeReplayer {
  private lineNo = 0;

  /** Feeds one input line; returns the detections it produced (usually none: a shared empty array — do not modify it). */
  line(text: string): Detection[] {
    this.lineNo += 1;
    const r = parseLine(text, this.eventTime);
    if (r === null) return NONE;
    if (typeof r === 'string') return this.malformed(this.lineNo, r);
    return this.record(r);
  }

  /** Feeds a batch of lines (see lineBatchesOf); returns the detections they produced, in order. */
  lines(batch: readonly string[]): Detection[] {
    let all: Detection[] = NONE;
    for (let i = 0; i < batch.length; i++) {
      const d = this.line(batch[i]);
      if (d.length > 0) all = all === NONE ? [...d] : (all.push(...d), all);
    }
    return all;
  }
}

/**
 * Splits a byte stream into lines, one array per chunk read: the reader pays
 * one await per chunk instead of one per line, which at replay speed is most
 * of the cost of reading. "\r\n" endings are accepted.
 */
export async function* lineBatchesOf(stream: AsyncIterable<Buffer | string>): AsyncGenerator<string[]> {
  let rest = '';
  // A multi-byte character may straddle two chunks; the decoder carries the partial bytes over.
  const decoder = new StringDecoder('utf8');
  // The decoder only holds bytes of a split character when the previous chunk ended in a non-ASCII byte.
  let pending = false;
  for await (const chunk of stream) {
    let decoded: string;
    if (typeof chunk === 'string') decoded = chunk;
    else if (!pending && isAscii(chunk)) decoded = chunk.toString('latin1'); // vitals are nearly always ASCII: 2–3× faster than UTF-8 decoding
    else {
      decoded = decoder.write(chunk);
      pending = chunk.length > 0 && chunk[chunk.length - 1] >= 0x80;
    }
    const text = rest + decoded;
    const batch: string[] = [];
    let start = 0;
    let nl = text.indexOf('\n', start);
    while (nl !== -1) {
      batch.push(text.charCodeAt(nl - 1) === 13 ? text.slice(start, nl - 1) : text.slice(start, nl));
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    rest = text.slice(start);
    if (batch.length > 0) yield batch;
  }
  rest += decoder.end();
  if (rest.length > 0) yield [rest];
}

/**
 * Splits a byte stream into lines, one at a time (lineBatchesOf is faster for bulk work).
 * Hand-written rather than an async generator: each `yield` of an async generator costs extra
 * microtask turns, which at replay speed is a third of the time; here a buffered line costs one
 * already-resolved promise.
 */
export function linesOf(stream: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  const batches = lineBatchesOf(stream);
  let batch: string[] = [];
  let i = 0;
  const it: AsyncGenerator<string> = {
    next(): Promise<IteratorResult<string>> {
      if (i < batch.length) return Promise.resolve({ done: false, value: batch[i++] });
      return batches.next().then((r) => {
        if (r.done) return { done: true, value: undefined };
        batch = r.value;
        i = 1;
        return { done: false, value: batch[0] };
      });
    },
    return(value?: unknown): Promise<IteratorResult<string>> {
      batch = [];
      return batches.return(undefined).then(() => ({ done: true, value: value as undefined }));
    },
    throw(err?: unknown): Promise<IteratorResult<string>> {
      batch = [];
      return batches.throw(err).then(() => ({ done: true, value: undefined }));
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}
