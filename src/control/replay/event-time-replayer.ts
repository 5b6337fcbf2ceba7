import type { ImmuneEvent } from '../../domain/events.js';
import type { Vitals } from '../../domain/vitals.js';
import type { EngineConfig } from '../../engine/config.js';
import { emptyList } from '../../engine/empty-list.js';
import { ImmuneEngine, type Outcome } from '../../engine/engine.js';
import type { VitalsChunk, VitalsReader } from './vitals-chunk.js';

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

/** Shared empty result: most records produce no detection, and allocating nothing for them matters at replay speed. */
export const NONE: Detection[] = Object.freeze([]) as unknown as Detection[];

/**
 * The live engine run in event time over validated vitals. Severe infections
 * are approved automatically, every healing action counts as applied, and a
 * failed probation waits for the recording to turn normal (it cannot react to
 * a cure) — so an agent is flagged once per episode, as a live run would.
 *
 * It knows nothing about text: the Replayer (one line at a time) and the
 * pipelined file replay (records parsed in a worker thread) both feed it, so
 * their output is the same by construction.
 */
export class EventTimeReplayer {
  private readonly engine: ImmuneEngine;
  /** Where the detections of the record being fed go (NONE until there is one, or the caller's array). */
  private found: Detection[] = NONE;
  private lastTs = -Infinity;
  private lastTick = -Infinity;
  readonly summary: ReplaySummary = { records: 0, skipped: 0, agents: 0, detections: 0, fleet_incidents: 0, out_of_order: 0, seconds: 0, vitals_per_second: 0 };
  private readonly started = performance.now();

  constructor(private readonly opts: ReplayOptions = {}) {
    this.engine = new ImmuneEngine({ healingStepDelaySeconds: 0, ...opts.engine, replayMode: true, autoApprove: true });
  }

  /** The replay clock: the latest timestamp seen (0 before the first record). A record without a timestamp gets this one. */
  get eventTime(): number {
    return this.lastTs === -Infinity ? 0 : this.lastTs;
  }

  /** Feeds one validated record; returns the detections it produced (usually NONE — do not modify it). */
  record(v: Vitals): Detection[] {
    this.found = NONE;
    this.feed(v);
    const found = this.found;
    this.found = NONE;
    return found;
  }

  /**
   * Feeds one validated record and appends its detections to `out`: record() without a result per
   * record (for bulk feeding; one array type at the caller, where NONE-or-array made it polymorphic).
   */
  recordInto(v: Vitals, out: Detection[]): void {
    this.found = out;
    this.feed(v);
    this.found = NONE;
  }

  private feed(v: Vitals): void {
    if (v.timestamp < this.lastTs) this.summary.out_of_order += 1;
    else this.lastTs = v.timestamp;
    this.summary.records += 1;
    if (v.timestamp >= this.lastTick + 1) {
      this.lastTick = v.timestamp;
      this.collect(this.engine.tick(v.timestamp));
    }
    this.collect(this.engine.observe(v));
  }

  /**
   * Feeds a chunk from the parse worker: its records (read with `reader`, which must have seen every
   * chunk before it) and its malformed lines, in input order; detections are appended to `out`.
   */
  feedChunk(reader: VitalsReader, c: VitalsChunk, out: Detection[]): void {
    reader.admit(c);
    const bad = c.malformed;
    let m = 0;
    for (let i = 0; i < c.records; i++) {
      for (; m < bad.length && bad[m].before === i; m++) this.malformed(bad[m].line, bad[m].reason);
      this.recordInto(reader.at(c, i, this.eventTime), out);
    }
    for (; m < bad.length; m++) this.malformed(bad[m].line, bad[m].reason);
  }

  /** A line that is not a valid record: counted and reported, or ReplayAbort under --strict. */
  malformed(line: number, reason: string): Detection[] {
    if (this.opts.strict) throw new ReplayAbort(line, reason);
    this.summary.skipped += 1;
    this.opts.onSkip?.(line, reason);
    return NONE;
  }

  finish(): ReplaySummary {
    const secs = (performance.now() - this.started) / 1000;
    this.summary.agents = this.engine.size;
    this.summary.seconds = Math.round(secs * 1000) / 1000;
    this.summary.vitals_per_second = secs > 0 ? Math.round(this.summary.records / secs) : 0;
    return this.summary;
  }

  private collect(o: Outcome): void {
    const events = o.events;
    for (let k = 0; k < events.length; k++) {
      const d = toDetection(events[k]);
      if (d) {
        if (this.found === NONE) this.found = emptyList();
        this.found.push(d);
        if (d.agent_id.startsWith('fleet:')) this.summary.fleet_incidents += 1;
        else this.summary.detections += 1;
      }
    }
    // Indexed, not for-of: the for-of here allocated an iterator result per sample (an eighth of the
    // engine thread's garbage, by V8's sampling heap profiler).
    const effects = o.effects;
    for (let k = 0; k < effects.length; k++) {
      const eff = effects[k];
      // Replay assumes every action is applied; probation then judges the recording.
      this.collect(this.engine.actionResult(eff.agent_id, eff.attempt_id, true, 'replay', this.lastTs));
    }
  }
}

/**
 * A detection is a snapshot: the engine keeps updating a live fleet incident (peers joining add their
 * anomalies to the array the event refers to), and the output must not depend on when it is serialised.
 */
function toDetection(e: ImmuneEvent): Detection | null {
  if (e.type === 'infection_detected') {
    const h = e.diagnosis.hypotheses[0];
    const i = e.infection;
    return { agent_id: i.agent_id, timestamp: i.timestamp, max_deviation: i.max_deviation, anomalies: [...i.anomalies], deviations: { ...i.deviations }, diagnosis: h.diagnosis, confidence: h.confidence, severity: i.severity };
  }
  if (e.type === 'fleet_incident_started') {
    const inc = e.incident;
    return {
      agent_id: e.agent_id,
      timestamp: e.ts,
      max_deviation: inc.max_deviation,
      anomalies: [...inc.anomalies],
      deviations: {},
      diagnosis: 'external_cause',
      confidence: 0.9,
      severity: inc.max_deviation >= 5 ? 'severe' : 'mild',
      agents: [...inc.agents],
    };
  }
  return null;
}
