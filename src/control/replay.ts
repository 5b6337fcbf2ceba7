import { isAscii } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';
import { isImmuneError } from '../domain/errors.js';
import type { ImmuneEvent } from '../domain/events.js';
import { parseVitals } from '../domain/vitals.js';
import type { EngineConfig } from '../engine/config.js';
import { ImmuneEngine, type Outcome } from '../engine/engine.js';

/** One line of `immune replay` output (DESIGN §2). Fleet incidents use agent_id "fleet:<group>" and list the agents. */
export interface Detection {
  agent_id: string;
  timestamp: number;
  max_deviation: number;
  anomalies: string[];
  deviations: Record<string, number>;
  diagnosis: string;
  confidence: number;
  severity: 'mild' | 'severe';
  agents?: string[];
}

export interface ReplaySummary {
  records: number;
  skipped: number;
  agents: number;
  detections: number;
  fleet_incidents: number;
  out_of_order: number;
  seconds: number;
  vitals_per_second: number;
}

export interface ReplayOptions {
  engine?: Partial<EngineConfig>;
  /** Stop at the first malformed line instead of skipping it. */
  strict?: boolean;
  /** Called for each skipped line (1-based line number). */
  onSkip?: (line: number, reason: string) => void;
}

export class ReplayAbort extends Error {
  constructor(readonly line: number, reason: string) {
    super(`line ${line}: ${reason}`);
  }
}

/**
 * The live engine run in event time over recorded vitals. Severe infections
 * are approved automatically, every healing action counts as applied, and a
 * failed probation waits for the recording to turn normal (it cannot react to
 * a cure) — so an agent is flagged once per episode, as a live run would.
 */
export class Replayer {
  private readonly engine: ImmuneEngine;
  private lineNo = 0;
  /** Detections of the line being fed (NONE until there is one: most lines produce nothing). */
  private found: Detection[] = NONE;
  private lastTs = -Infinity;
  private lastTick = -Infinity;
  readonly summary: ReplaySummary = { records: 0, skipped: 0, agents: 0, detections: 0, fleet_incidents: 0, out_of_order: 0, seconds: 0, vitals_per_second: 0 };
  private readonly started = performance.now();

  constructor(private readonly opts: ReplayOptions = {}) {
    this.engine = new ImmuneEngine({ healingStepDelaySeconds: 0, ...opts.engine, replayMode: true, autoApprove: true });
  }

  /** Feeds one input line; returns the detections it produced (usually none: a shared empty array — do not modify it). */
  line(text: string): Detection[] {
    this.lineNo += 1;
    if (isBlank(text)) return NONE;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      return this.skip(`malformed JSON (${(e as Error).message})`);
    }
    let v;
    try {
      v = parseVitals(raw, this.lastTs === -Infinity ? 0 : this.lastTs);
    } catch (e) {
      if (isImmuneError(e)) return this.skip(e.message);
      throw e;
    }
    if (v.timestamp < this.lastTs) this.summary.out_of_order += 1;
    else this.lastTs = v.timestamp;
    this.summary.records += 1;
    this.found = NONE;
    if (v.timestamp >= this.lastTick + 1) {
      this.lastTick = v.timestamp;
      this.collect(this.engine.tick(v.timestamp));
    }
    this.collect(this.engine.observe(v));
    return this.found;
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

  finish(): ReplaySummary {
    const secs = (performance.now() - this.started) / 1000;
    this.summary.agents = this.engine.size;
    this.summary.seconds = Math.round(secs * 1000) / 1000;
    this.summary.vitals_per_second = secs > 0 ? Math.round(this.summary.records / secs) : 0;
    return this.summary;
  }

  private skip(reason: string): Detection[] {
    if (this.opts.strict) throw new ReplayAbort(this.lineNo, reason);
    this.summary.skipped += 1;
    this.opts.onSkip?.(this.lineNo, reason);
    return NONE;
  }

  private collect(o: Outcome): void {
    for (const e of o.events) {
      const d = toDetection(e);
      if (d) {
        if (this.found === NONE) this.found = [];
        this.found.push(d);
        if (d.agent_id.startsWith('fleet:')) this.summary.fleet_incidents += 1;
        else this.summary.detections += 1;
      }
    }
    for (const eff of o.effects) {
      // Replay assumes every action is applied; probation then judges the recording.
      this.collect(this.engine.actionResult(eff.agent_id, eff.attempt_id, true, 'replay', this.lastTs));
    }
  }
}

function toDetection(e: ImmuneEvent): Detection | null {
  if (e.type === 'infection_detected') {
    const h = e.diagnosis.hypotheses[0];
    const i = e.infection;
    return { agent_id: i.agent_id, timestamp: i.timestamp, max_deviation: i.max_deviation, anomalies: i.anomalies, deviations: i.deviations, diagnosis: h.diagnosis, confidence: h.confidence, severity: i.severity };
  }
  if (e.type === 'fleet_incident_started') {
    const inc = e.incident;
    return {
      agent_id: e.agent_id,
      timestamp: e.ts,
      max_deviation: inc.max_deviation,
      anomalies: inc.anomalies,
      deviations: {},
      diagnosis: 'external_cause',
      confidence: 0.9,
      severity: inc.max_deviation >= 5 ? 'severe' : 'mild',
      agents: inc.agents,
    };
  }
  return null;
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

const NONE: Detection[] = Object.freeze([]) as unknown as Detection[];

/** Whitespace-only (or empty); cheap for the usual line that starts with "{". */
function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10 && c !== 0xfeff) return false;
  }
  return true;
}
