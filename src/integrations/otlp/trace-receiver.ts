import { isImmuneError } from '../../domain/errors.js';
import { checkTimestamp, parseVitals, type TimestampBounds, type Vitals } from '../../domain/vitals.js';
import { silentLogger, type Logger } from '../../log.js';
import { decodeContentEncoding, decodeTraceRequest, type OtlpEncoding } from './decode-request.js';
import { classifySpan, spanDefect, type SpanSkipReason } from './genai-span.js';
import { invocationVitals, modelCallVitals } from './genai-vitals.js';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits, type DecodedTraceExport, type OtlpSpan } from './otlp-types.js';
import { DEFAULT_ASSEMBLER_LIMITS, TraceAssembler, type AssemblerLimits, type AssembledUnit, type AssemblyDropReason, type AssemblyOutput } from './trace-assembler.js';

/** Every reason a received span yields no record, in the order the docs list them. */
export const SPAN_SKIP_REASONS = ['no_genai_attributes', 'unsupported_operation', 'invalid_span', 'duplicate', 'late_span', 'tool_without_agent', 'evicted'] as const;
export type OtlpSkipReason = (typeof SPAN_SKIP_REASONS)[number];

/** Counters since start, plus what is held right now. Read by /metrics and the status API. */
export interface OtlpReceiverStats {
  exports_received: number;
  decode_errors: number;
  spans_received: number;
  spans_skipped: Record<OtlpSkipReason, number>;
  records_emitted: number;
  /** Records the mapping produced that parseVitals refused (a bug or an exotic attribute); logged. */
  records_invalid: number;
  /** Records whose span end time lies outside timestampBounds; logged. */
  records_out_of_range: number;
  /** Records onVitals threw on; logged. */
  records_failed: number;
  traces_evicted: number;
  pending_traces: number;
  pending_spans: number;
}

export interface OtlpReceiverLimits extends AssemblerLimits, DecodeLimits {
  /** Largest body after gzip is undone, bytes. */
  maxInflatedBytes: number;
}

export const DEFAULT_RECEIVER_LIMITS: OtlpReceiverLimits = Object.freeze({ ...DEFAULT_ASSEMBLER_LIMITS, ...DEFAULT_DECODE_LIMITS, maxInflatedBytes: 16 * 1024 * 1024 });

export interface OtlpReceiverOptions {
  /** Receives every validated record; called from receive() and flush(). It should not throw (queue, don't block). */
  onVitals: (records: Vitals[]) => void;
  /** Clock in epoch milliseconds; injected by tests. */
  now?: () => number;
  limits?: Partial<OtlpReceiverLimits>;
  /** When set, records whose timestamp (span end) is outside [now - maxAge, now + maxFuture] are counted and dropped, as live ingest does. */
  timestampBounds?: TimestampBounds;
  log?: Logger;
}

/** What one export came to: the numbers an OTLP partial_success reports. */
export interface ExportOutcome {
  spans: number;
  rejectedSpans: number;
  /** '' when every span was accepted; otherwise names the skips, e.g. "2 spans skipped: 2 no_genai_attributes". */
  errorMessage: string;
}

function zeroSkips(): Record<OtlpSkipReason, number> {
  return Object.fromEntries(SPAN_SKIP_REASONS.map((r) => [r, 0])) as Record<OtlpSkipReason, number>;
}

/**
 * Turns OTLP trace exports into vitals: decode → classify → assemble → map →
 * validate → onVitals. Records are emitted when their grace period ends, from
 * receive() or from flush(), which the server calls on its 1 s tick.
 */
export class OtlpTraceReceiver {
  readonly limits: OtlpReceiverLimits;
  private readonly assembler: TraceAssembler;
  private readonly onVitals: (records: Vitals[]) => void;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly timestampBounds: TimestampBounds | undefined;
  private readonly counters = {
    exports_received: 0,
    decode_errors: 0,
    spans_received: 0,
    spans_skipped: zeroSkips(),
    records_emitted: 0,
    records_invalid: 0,
    records_out_of_range: 0,
    records_failed: 0,
    traces_evicted: 0,
  };

  constructor(opts: OtlpReceiverOptions) {
    this.limits = { ...DEFAULT_RECEIVER_LIMITS, ...opts.limits };
    this.assembler = new TraceAssembler(this.limits);
    this.onVitals = opts.onVitals;
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? silentLogger();
    this.timestampBounds = opts.timestampBounds;
  }

  /**
   * Undoes gzip, decodes and receives one HTTP body. Throws the ImmuneError of a
   * malformed payload (counted as a decode error); nothing of a refused export is kept.
   */
  async receiveBody(body: Buffer, encoding: OtlpEncoding, contentEncoding?: string): Promise<ExportOutcome> {
    let decoded: DecodedTraceExport;
    try {
      const plain = await decodeContentEncoding(body, contentEncoding, this.limits.maxInflatedBytes);
      decoded = decodeTraceRequest(plain, encoding, this.limits);
    } catch (e) {
      if (isImmuneError(e)) this.counters.decode_errors++;
      throw e;
    }
    return this.receive(decoded);
  }

  /** Receives one decoded export: classifies and holds its spans, then emits whatever is due. */
  receive(request: DecodedTraceExport): ExportOutcome {
    const now = this.now();
    this.counters.exports_received++;
    this.counters.spans_received += request.spans.length;
    const skipped = zeroSkips();
    const links: OtlpSpan[] = [];
    // GenAI spans first: a trace keeps bare links only once it holds a GenAI span.
    for (const span of request.spans) {
      const c = classifySpan(span);
      if (c.ok) {
        if (this.assembler.addSpan(c.span, now) === 'duplicate') skipped.duplicate++;
      } else if (c.reason === 'no_genai_attributes' && spanDefect(span) === '') {
        skipped.no_genai_attributes++;
        links.push(span);
      } else {
        skipped[c.reason satisfies SpanSkipReason]++;
      }
    }
    for (const span of links) this.assembler.addLink(span, now);
    let rejected = 0;
    for (const r of SPAN_SKIP_REASONS) {
      this.counters.spans_skipped[r] += skipped[r];
      rejected += skipped[r];
    }
    this.emit(this.assembler.flushTraces(new Set(request.spans.map((s) => s.traceId)), now), now);
    const detail = SPAN_SKIP_REASONS.filter((r) => skipped[r] > 0).map((r) => `${skipped[r]} ${r}`);
    return { spans: request.spans.length, rejectedSpans: rejected, errorMessage: rejected === 0 ? '' : `${rejected} of ${request.spans.length} spans skipped: ${detail.join(', ')}` };
  }

  /** Emits the records whose grace period has ended. Call it on the server tick. Returns how many were emitted. */
  flush(nowMs: number = this.now()): number {
    return this.emit(this.assembler.flush(nowMs), nowMs);
  }

  /** Emits everything still held (server shutdown), so nothing accepted is lost. */
  close(nowMs: number = this.now()): number {
    return this.emit(this.assembler.flushAll(nowMs), nowMs);
  }

  stats(): OtlpReceiverStats {
    return {
      ...this.counters,
      spans_skipped: { ...this.counters.spans_skipped },
      pending_traces: this.assembler.traceCount,
      pending_spans: this.assembler.spanCount,
    };
  }

  private emit(out: AssemblyOutput, nowMs: number): number {
    for (const [reason, n] of Object.entries(out.dropped) as Array<[AssemblyDropReason, number]>) this.counters.spans_skipped[reason] += n;
    this.counters.traces_evicted += out.tracesEvicted;
    if (out.tracesEvicted > 0) this.log.warn({ traces: out.tracesEvicted, pending_traces: this.assembler.traceCount }, 'otlp: trace assembly cap reached; oldest traces emitted early');
    if (out.units.length === 0) return 0;
    const records: Vitals[] = [];
    for (const unit of out.units) {
      const input = unit.kind === 'invocation' ? invocationVitals(unit.agent, unit.children) : modelCallVitals(unit.call);
      try {
        const v = parseVitals(input, nowMs / 1000);
        if (this.timestampBounds !== undefined) checkTimestamp(v, nowMs / 1000, this.timestampBounds);
        records.push(v);
      } catch (e) {
        const outOfRange = isImmuneError(e) && e.code === 'IMM_ERR_TIMESTAMP_RANGE';
        this.counters[outOfRange ? 'records_out_of_range' : 'records_invalid']++;
        this.log.warn({ err: e, agent_id: input.agent_id, trace_id: traceIdOf(unit) }, outOfRange ? 'otlp: span ended outside the accepted time window; record dropped' : 'otlp: span mapping produced an invalid vitals record; dropped');
      }
    }
    if (records.length === 0) return 0;
    try {
      this.onVitals(records);
      this.counters.records_emitted += records.length;
    } catch (e) {
      this.counters.records_failed += records.length;
      this.log.error({ err: e, records: records.length }, 'otlp: onVitals failed; records lost');
    }
    return records.length;
  }
}

function traceIdOf(unit: AssembledUnit): string {
  return unit.kind === 'invocation' ? unit.agent.traceId : unit.call.traceId;
}
