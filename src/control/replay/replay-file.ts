import type { Worker } from 'node:worker_threads';
import { emptyList } from '../../engine/empty-list.js';
import { spawnWorker } from '../../spawn-worker.js';
import type { Detection, EventTimeReplayer } from './event-time-replayer.js';
import { ChunkRing, VitalsReader, type VitalsChunk } from './vitals-chunk.js';

/** A file by path, or an open descriptor (0 for stdin). */
export type ReplaySource = { path: string } | { fd: number };

/** What the parse worker is started with (its input follows in a SourceMessage). control[0]: chunks consumed by the engine thread; control[1]: 1 = stop. */
export interface ParseWorkerData {
  control: SharedArrayBuffer;
  ring: { slots: number; capacity: number; memory: ChunkRing['memory'] };
}

/** A chunk on the wire: its numbers are in ring slot `slot`, the rest travels with the message. */
export type ChunkMessage = { type: 'chunk'; slot: number } & Omit<VitalsChunk, 'num' | 'ref'>;
export type WorkerMessage = ChunkMessage | { type: 'end' } | { type: 'error'; message: string };
/** The one message the worker gets: what to read. */
export type SourceMessage = { type: 'source' } & ReplaySource;

/** Records per chunk: large enough that messaging costs nothing per record, small enough to start the engine at once. */
const CHUNK_RECORDS = 8192;
/** Chunks in shared memory; the worker runs at most SLOTS - 1 chunks ahead, which bounds memory on inputs of any size. */
const SLOTS = 4;

/** The input could not be opened or read (the message is the system's, e.g. "ENOENT: no such file or directory, open 'x'"). */
export class ReplayInputError extends Error {}

/**
 * Replays a JSONL file of vitals on two threads: a worker reads, splits,
 * parses and validates (vitals-scanner, falling back to parseLine), and ships
 * columnar chunks; this thread rebuilds each record and feeds `replayer`, so
 * the engine never waits for JSON. Yields the detections of each chunk, in
 * input order — the same as Replayer.line over the same lines, including
 * malformed-line reports (onSkip) and the --strict ReplayAbort, thrown after
 * the detections before it are yielded. An unreadable input throws
 * ReplayInputError. Stopping early (break) stops the worker.
 */
export function replayFile(source: ReplaySource, replayer: EventTimeReplayer): AsyncGenerator<Detection[]> {
  return parseWorkerFor(source).replay(replayer);
}

let prestarted: ParseWorker | null = null;

/**
 * Starts a parse worker thread before anyone knows for sure what it will read: `immune replay` calls this
 * first thing, so that the thread boots (≈ 0.1 s on the two-core machine) while the CLI and the engine load.
 * With `guess` (the input file as read off the command line before the CLI has parsed it) the worker also
 * starts reading it, so the first records are ready when the engine is (≈ 30 ms sooner); parseWorkerFor
 * throws that work away if the parsed flags name another input. Until parseWorkerFor claims it, the
 * worker does not keep the process alive (`--help` and bad flags exit).
 */
export function prestartParseWorker(guess?: ReplaySource): void {
  prestarted ??= new ParseWorker();
  prestarted.unref();
  if (guess) prestarted.start(guess);
}

/**
 * The input file named on an `immune replay` command line (`args`: what follows `replay`), when it can be
 * read off without the CLI's parser: one `-i FILE`, `-iFILE`, `--input FILE` or `--input=FILE`, and no
 * other argument that could be taken for it. Null for stdin (`-`), none or several.
 */
export function inputGuess(args: readonly string[]): ReplaySource | null {
  const found: string[] = [];
  for (let k = 0; k < args.length; k++) {
    const a = args[k];
    if (a === '--') return null;
    if (a === '-i' || a === '--input') found.push(args[++k] ?? '');
    else if (a.startsWith('--input=')) found.push(a.slice('--input='.length));
    else if (a.startsWith('-i')) found.push(a.slice(2));
    else if (/^-[^-]*i/.test(a)) return null; // -i inside a group of short flags: leave it to the parser
  }
  return found.length === 1 && found[0] !== '' && found[0] !== '-' && !found[0].startsWith('-') ? { path: found[0] } : null;
}

/** A parse worker reading `source`: the prestarted one if there is one (unless it guessed another input), else a new one. */
export function parseWorkerFor(source: ReplaySource): ParseWorker {
  let w = prestarted;
  prestarted = null;
  if (w && !w.canRead(source)) {
    void w.stop();
    w = null;
  }
  w ??= new ParseWorker();
  w.read(source);
  return w;
}

/**
 * The parse half of replayFile, started on its own so that the worker thread
 * boots (≈ 50–100 ms) while the caller is still loading the engine. Once told
 * what to read, it reads ahead at most the ring's size until `replay` consumes it.
 */
export class ParseWorker {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(8));
  private readonly ring = new ChunkRing(SLOTS, CHUNK_RECORDS);
  private readonly worker: Worker;
  private readonly inbox: Inbox;
  /** What the worker was told to read (null: nothing yet). */
  private source: ReplaySource | null = null;

  constructor() {
    const { ring } = this;
    this.worker = spawnWorker(import.meta.url, 'parse-worker', { control: this.ctl.buffer as SharedArrayBuffer, ring: { slots: ring.slots, capacity: ring.capacity, memory: ring.memory } } satisfies ParseWorkerData);
    this.inbox = new Inbox(this.worker);
  }

  /** Tells the worker what to read (once), without keeping the process alive for it. */
  start(source: ReplaySource): void {
    if (this.source) throw new Error('the parse worker already has its input');
    this.source = source;
    this.worker.postMessage({ type: 'source', ...source } satisfies SourceMessage);
  }

  /** True when the worker has no input yet or is reading `source` already. */
  canRead(source: ReplaySource): boolean {
    const s = this.source;
    return s === null || ('path' in s && 'path' in source ? s.path === source.path : 'fd' in s && 'fd' in source && s.fd === source.fd);
  }

  /** Has the worker read `source` (telling it unless it is reading it already); from then on it keeps the process alive. */
  read(source: ReplaySource): void {
    if (!this.canRead(source)) throw new Error('the parse worker is reading another input');
    this.worker.ref();
    if (!this.source) this.start(source);
  }

  unref(): void {
    this.worker.unref();
  }

  /** See replayFile. Call once. */
  async *replay(replayer: EventTimeReplayer): AsyncGenerator<Detection[]> {
    const { ctl, ring, inbox } = this;
    const reader = new VitalsReader();
    try {
      for (;;) {
        const msg = await inbox.next();
        if (msg.type === 'end') return;
        if (msg.type === 'error') throw new ReplayInputError(msg.message);
        const found: Detection[] = emptyList();
        let failure: unknown = null;
        try {
          replayer.feedChunk(reader, chunkOf(msg, ring), found);
        } catch (err) {
          failure = err;
        }
        Atomics.add(ctl, 0, 1);
        Atomics.notify(ctl, 0);
        if (found.length > 0) yield found;
        if (failure !== null) throw failure;
      }
    } finally {
      await this.stop();
    }
  }

  /** Stops the worker (safe to call twice). */
  async stop(): Promise<void> {
    Atomics.store(this.ctl, 1, 1);
    Atomics.notify(this.ctl, 0);
    Atomics.notify(this.ctl, 1);
    await this.worker.terminate();
  }
}

/**
 * The chunk a message describes, built field by field: every chunk then has one hidden class. A spread
 * of the deserialised message does not (its maps vary with what the chunk's arrays hold), and each new
 * one threw away the engine thread's compiled code.
 */
function chunkOf(msg: ChunkMessage, ring: ChunkRing): VitalsChunk {
  return { records: msg.records, num: ring.num[msg.slot], ref: ring.ref[msg.slot], agents: msg.agents, firstAgent: msg.firstAgent, strings: msg.strings, firstString: msg.firstString, lists: msg.lists, malformed: msg.malformed };
}

/** The worker's messages as an awaitable queue; a crash or an early exit rejects. */
class Inbox {
  private readonly queue: WorkerMessage[] = [];
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(worker: Worker) {
    worker.on('message', (m: WorkerMessage) => {
      this.queue.push(m);
      this.notify();
    });
    worker.on('error', (err) => {
      this.failure ??= err;
      this.notify();
    });
    worker.on('exit', (code) => {
      this.failure ??= new Error(`the replay parse worker exited (code ${code}) before the end of the input`);
      this.notify();
    });
  }

  async next(): Promise<WorkerMessage> {
    for (;;) {
      const m = this.queue.shift();
      if (m) return m;
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
