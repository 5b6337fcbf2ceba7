import { Counter, Gauge, type Registry } from 'prom-client';
import type { OtlpReceiverStats } from './otlp/trace-receiver.js';

/**
 * The OTLP receiver's own counters on the Prometheus registry, read at scrape
 * time, so operators can see skipped spans and dropped records (docs/OTLP.md).
 */
export function registerOtlpMetrics(registry: Registry, stats: () => OtlpReceiverStats): void {
  const counter = (name: string, help: string, read: (s: OtlpReceiverStats) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect(this: Counter) {
        this.reset();
        this.inc(read(stats()));
      },
    });
  counter('immune_otlp_exports_total', 'OTLP trace export requests received.', (s) => s.exports_received);
  counter('immune_otlp_decode_errors_total', 'OTLP trace exports refused as malformed.', (s) => s.decode_errors);
  counter('immune_otlp_spans_received_total', 'Spans received over OTLP.', (s) => s.spans_received);
  counter('immune_otlp_records_emitted_total', 'Vitals records produced from OTLP spans.', (s) => s.records_emitted);
  counter('immune_otlp_records_invalid_total', 'Records from OTLP spans that failed vitals validation.', (s) => s.records_invalid);
  counter('immune_otlp_records_out_of_range_total', 'Records from OTLP spans outside the accepted timestamp window.', (s) => s.records_out_of_range);
  counter('immune_otlp_records_failed_total', 'Records from OTLP spans the control plane could not take.', (s) => s.records_failed);
  counter('immune_otlp_traces_evicted_total', 'Incomplete traces evicted by the memory bound.', (s) => s.traces_evicted);
  new Counter({
    name: 'immune_otlp_spans_skipped_total',
    help: 'Spans skipped, by reason (e.g. no GenAI attributes).',
    labelNames: ['reason'],
    registers: [registry],
    collect(this: Counter) {
      this.reset();
      for (const [reason, n] of Object.entries(stats().spans_skipped)) this.inc({ reason }, n);
    },
  });
  const gauge = (name: string, help: string, read: (s: OtlpReceiverStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect(this: Gauge) {
        this.set(read(stats()));
      },
    });
  gauge('immune_otlp_pending_traces', 'Traces held while their spans arrive.', (s) => s.pending_traces);
  gauge('immune_otlp_pending_spans', 'Spans held while their traces complete.', (s) => s.pending_spans);
}
