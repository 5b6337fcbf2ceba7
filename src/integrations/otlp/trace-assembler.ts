import type { GenAiSpan } from './genai-span.js';

/*
 * Spans of one trace arrive in several exports, children before their parents
 * (a span is exported when it ends, and children end first). The assembler holds
 * GenAI spans per trace until the agent invocation that owns them is complete,
 * then hands out one unit per invocation, or per model call that no invocation
 * owns. Memory is bounded by three caps; what a cap pushes out is emitted early
 * when it is complete enough to be a record, and counted as dropped otherwise.
 *
 * Ownership: a model or tool span belongs to its nearest invoke_agent ancestor,
 * found by walking parent ids through every span of the trace seen so far
 * (including non-GenAI spans, which are kept as bare parent links). A nested
 * invoke_agent is its own record; its calls do not count for the outer agent.
 *
 * A call whose ancestors have all arrived and include no agent stands alone
 * after the grace period. A call whose chain stops at a span not seen yet is
 * usually inside an agent that is still running (agents run for minutes, their
 * model calls end and are exported long before), so it waits up to
 * parentWaitMs for the rest of its chain before it stands alone.
 */

export interface AssemblerLimits {
  /** How long an invocation waits after its invoke_agent span arrives for children that end after it, ms. */
  graceMs: number;
  /** How long a call whose parent chain is incomplete waits for its ancestors (a still-running agent) before it stands alone, ms. */
  parentWaitMs: number;
  /** How long a trace with nothing pending is remembered, to drop re-sent spans and count late ones, ms. */
  retainMs: number;
  /** Most traces held (pending or remembered). */
  maxTraces: number;
  /** Most spans held for one trace; a longer trace is emitted early and started afresh. */
  maxSpansPerTrace: number;
  /** Most spans held across all traces. */
  maxSpans: number;
}

export const DEFAULT_ASSEMBLER_LIMITS: AssemblerLimits = Object.freeze({
  graceMs: 2_000,
  parentWaitMs: 300_000,
  retainMs: 30_000,
  maxTraces: 10_000,
  maxSpansPerTrace: 1_000,
  maxSpans: 100_000,
});

/** A bare span known only for its place in the tree (no GenAI attributes). */
export interface SpanLink {
  traceId: string;
  spanId: string;
  parentSpanId: string;
}

export type AssembledUnit = { kind: 'invocation'; agent: GenAiSpan; children: GenAiSpan[] } | { kind: 'model_call'; call: GenAiSpan };

/**
 * Why a held span produced no record:
 * late_span — it arrived after the record of its invocation was emitted;
 * tool_without_agent — a tool call that no invocation owns (a record is per invocation or model call);
 * evicted — a cap pushed its trace out before its invocation arrived.
 */
export type AssemblyDropReason = 'late_span' | 'tool_without_agent' | 'evicted';

export interface AssemblyOutput {
  units: AssembledUnit[];
  dropped: Record<AssemblyDropReason, number>;
  /** Traces pushed out by a cap while they still had pending spans. */
  tracesEvicted: number;
}

interface HeldAgent {
  span: GenAiSpan;
  dueMs: number;
  emitted: boolean;
}

interface HeldCall {
  span: GenAiSpan;
  arrivedMs: number;
  /** Next time the call's fate can change by time alone (end of its grace period or of its parent wait). */
  checkAtMs: number;
}

interface TraceState {
  /** Parent of every span seen in this trace ('' for roots). Its size is the trace's span count. */
  parents: Map<string, string>;
  agents: Map<string, HeldAgent>;
  /** Model and tool spans not yet emitted or dropped. */
  calls: HeldCall[];
  pendingAgents: number;
  lastSeenMs: number;
  /** A span arrived since the last settle: a waiting call's chain may be complete now. */
  changed: boolean;
}

export type AddResult = 'held' | 'duplicate' | 'ignored';

function newTrace(nowMs: number): TraceState {
  return { parents: new Map(), agents: new Map(), calls: [], pendingAgents: 0, lastSeenMs: nowMs, changed: false };
}

function hasPending(t: TraceState): boolean {
  return t.pendingAgents > 0 || t.calls.length > 0;
}

/** Whether settling could change anything: something is due, or (when `onChange`) a span arrived that may complete a waiting call's chain. */
function needsSettling(t: TraceState, nowMs: number, onChange: boolean): boolean {
  if (onChange && t.changed && t.calls.length > 0) return true;
  for (const a of t.agents.values()) if (!a.emitted && a.dueMs <= nowMs) return true;
  for (const c of t.calls) if (c.checkAtMs <= nowMs) return true;
  return false;
}

function emptyDrops(): Record<AssemblyDropReason, number> {
  return { late_span: 0, tool_without_agent: 0, evicted: 0 };
}

/** Groups GenAI spans into invocations with bounded memory. Time is passed in (ms), never read. */
export class TraceAssembler {
  private readonly limits: AssemblerLimits;
  /** Traces with pending spans, oldest first. */
  private readonly active = new Map<string, TraceState>();
  /** Traces with nothing pending, remembered for retainMs, oldest first. */
  private readonly done = new Map<string, TraceState>();
  private spans = 0;
  private out: AssemblyOutput = { units: [], dropped: emptyDrops(), tracesEvicted: 0 };

  constructor(limits: Partial<AssemblerLimits> = {}) {
    this.limits = { ...DEFAULT_ASSEMBLER_LIMITS, ...limits };
    const l = this.limits;
    for (const [k, v] of Object.entries(l)) {
      if (!Number.isFinite(v) || v < 0) throw new RangeError(`assembler limit ${k} must be a non-negative number, got ${v}`);
    }
    if (l.maxTraces < 1 || l.maxSpansPerTrace < 1 || l.maxSpans < l.maxSpansPerTrace) {
      throw new RangeError('assembler limits need maxTraces ≥ 1, maxSpansPerTrace ≥ 1 and maxSpans ≥ maxSpansPerTrace');
    }
  }

  /** Traces currently held (pending or remembered). */
  get traceCount(): number {
    return this.active.size + this.done.size;
  }

  /** Spans currently held, GenAI spans and bare links together. */
  get spanCount(): number {
    return this.spans;
  }

  /** Holds a GenAI span until its invocation is complete. A span id seen before in the trace is a duplicate (an exporter retry). */
  addSpan(span: GenAiSpan, nowMs: number): AddResult {
    const t = this.admit(span.traceId, span.spanId, span.parentSpanId, nowMs, true);
    if (t === undefined) return 'duplicate';
    if (span.role === 'agent') {
      t.agents.set(span.spanId, { span, dueMs: nowMs + this.limits.graceMs, emitted: false });
      t.pendingAgents++;
    } else {
      t.calls.push({ span, arrivedMs: nowMs, checkAtMs: nowMs + this.limits.graceMs });
    }
    return 'held';
  }

  /**
   * Records where a non-GenAI span sits in its trace, so ownership can be traced
   * through it. Only traces that already hold GenAI spans keep links: a parent ends
   * after its children, so it arrives with or after them; pass an export's GenAI
   * spans before its links.
   */
  addLink(link: SpanLink, nowMs: number): AddResult {
    if (!this.active.has(link.traceId) && !this.done.has(link.traceId)) return 'ignored';
    return this.admit(link.traceId, link.spanId, link.parentSpanId, nowMs, false) === undefined ? 'duplicate' : 'held';
  }

  /** Emits every unit whose grace period has ended, forgets traces idle past retainMs, and returns what was produced since the last call. */
  flush(nowMs: number): AssemblyOutput {
    for (const [id, t] of this.active) this.settleActive(id, t, nowMs, true);
    for (const [id, t] of this.done) {
      if (t.lastSeenMs + this.limits.retainMs <= nowMs) this.forget(id, t);
    }
    return this.drain();
  }

  /**
   * Emits what is due in the given traces only (those one export touched) plus
   * anything a cap pushed out. The receiver calls it per export: unlike flush it
   * does not scan every trace, and it does not re-walk waiting chains on each new
   * span (flush does that once per tick).
   */
  flushTraces(traceIds: Iterable<string>, nowMs: number): AssemblyOutput {
    for (const id of traceIds) {
      const t = this.active.get(id);
      if (t !== undefined) this.settleActive(id, t, nowMs, false);
    }
    return this.drain();
  }

  /** Emits everything held now, as if every grace period had ended (shutdown). */
  flushAll(nowMs: number): AssemblyOutput {
    for (const t of this.active.values()) this.settle(t, nowMs, true);
    for (const [id, t] of [...this.active, ...this.done]) this.forget(id, t);
    return this.drain();
  }

  private settleActive(id: string, t: TraceState, nowMs: number, onChange: boolean): void {
    if (!needsSettling(t, nowMs, onChange)) return;
    this.settle(t, nowMs, false);
    if (!hasPending(t)) {
      this.active.delete(id);
      this.done.set(id, t);
    }
  }

  private drain(): AssemblyOutput {
    const out = this.out;
    this.out = { units: [], dropped: emptyDrops(), tracesEvicted: 0 };
    return out;
  }

  /** Finds or makes the trace's state and records the span's parent link, evicting to stay within the caps. Undefined for a duplicate. */
  private admit(traceId: string, spanId: string, parentSpanId: string, nowMs: number, genAi: boolean): TraceState | undefined {
    let t = this.active.get(traceId) ?? this.done.get(traceId);
    if (t !== undefined && t.parents.has(spanId)) return undefined;
    if (t !== undefined && t.parents.size >= this.limits.maxSpansPerTrace) {
      // A very long trace (a session that never ends): emit what it has and start it afresh.
      this.evict(traceId, t, nowMs);
      t = undefined;
    }
    if (t === undefined) {
      while (this.traceCount >= this.limits.maxTraces) this.evictOldest(nowMs);
      t = newTrace(nowMs);
      this.active.set(traceId, t);
    }
    while (this.spans >= this.limits.maxSpans) this.evictOldest(nowMs, traceId);
    t.parents.set(spanId, parentSpanId);
    this.spans++;
    t.lastSeenMs = nowMs;
    t.changed = true;
    if (genAi && this.done.has(traceId)) {
      this.done.delete(traceId);
      this.active.set(traceId, t);
    }
    return t;
  }

  /** Pushes out the oldest trace, preferring remembered ones (free) over pending ones (emitted early). */
  private evictOldest(nowMs: number, keep?: string): void {
    for (const map of [this.done, this.active]) {
      for (const [id, t] of map) {
        if (id === keep) continue;
        this.evict(id, t, nowMs);
        return;
      }
    }
    throw new Error('assembler caps leave no trace to evict'); // unreachable: maxSpans ≥ maxSpansPerTrace
  }

  private evict(id: string, t: TraceState, nowMs: number): void {
    if (hasPending(t)) {
      this.out.tracesEvicted++;
      this.settle(t, nowMs, true);
    }
    this.forget(id, t);
  }

  private forget(id: string, t: TraceState): void {
    this.active.delete(id);
    this.done.delete(id);
    this.spans -= t.parents.size;
  }

  /**
   * Emits the trace's due invocations with the calls they own, then decides the
   * calls no pending invocation owns. `force` treats every wait as over
   * (eviction, shutdown): pending agents are emitted with what they have, unowned
   * model calls become their own records, and an unowned tool call is counted as
   * evicted if it was still waiting for its agent.
   */
  private settle(t: TraceState, nowMs: number, force: boolean): void {
    t.changed = false;
    const owners = t.calls.map((c) => this.ownerOf(t, c.span));
    const claimed = new Set<HeldCall>();
    for (const agent of t.agents.values()) {
      if (agent.emitted || (!force && agent.dueMs > nowMs)) continue;
      const children: GenAiSpan[] = [];
      t.calls.forEach((c, i) => {
        if (owners[i] === agent) {
          children.push(c.span);
          claimed.add(c);
        }
      });
      agent.emitted = true;
      t.pendingAgents--;
      this.out.units.push({ kind: 'invocation', agent: agent.span, children });
    }
    const remaining: HeldCall[] = [];
    t.calls.forEach((c, i) => {
      if (claimed.has(c)) return;
      const owner = owners[i];
      if (owner !== 'root' && owner !== 'broken') {
        if (owner.emitted) this.out.dropped.late_span++;
        else remaining.push(c); // its invocation is still in its grace period
        return;
      }
      // No agent above it (root reached), or none yet (chain incomplete).
      const waitUntil = c.arrivedMs + (owner === 'root' ? this.limits.graceMs : this.limits.parentWaitMs);
      if (nowMs < waitUntil && !force) {
        c.checkAtMs = waitUntil;
        remaining.push(c);
      } else if (c.span.role === 'model') {
        this.out.units.push({ kind: 'model_call', call: c.span });
      } else {
        this.out.dropped[nowMs >= waitUntil ? 'tool_without_agent' : 'evicted']++;
      }
    });
    t.calls = remaining;
  }

  /**
   * The nearest invoke_agent ancestor of a span, walking parent links; 'root'
   * when the walk reaches a root without passing an agent; 'broken' when it
   * stops at a span not seen (yet). A broken chain inside the time range of an
   * agent that has arrived is taken to belong to the innermost such agent: the
   * missing spans were lost or filtered out, and the agent has ended.
   */
  private ownerOf(t: TraceState, span: GenAiSpan): HeldAgent | 'root' | 'broken' {
    let id = span.parentSpanId;
    for (let steps = 0; id !== '' && steps <= t.parents.size; steps++) {
      const agent = t.agents.get(id);
      if (agent !== undefined) return agent;
      const parent = t.parents.get(id);
      if (parent === undefined) return this.enclosingAgent(t, span) ?? 'broken';
      id = parent;
    }
    return id === '' ? 'root' : 'broken'; // the step cap only trips on a cycle of parent ids
  }

  private enclosingAgent(t: TraceState, span: GenAiSpan): HeldAgent | undefined {
    let best: HeldAgent | undefined;
    for (const a of t.agents.values()) {
      if (a.span.startNs <= span.startNs && a.span.endNs >= span.endNs && (best === undefined || a.span.startNs > best.span.startNs)) best = a;
    }
    return best;
  }
}
