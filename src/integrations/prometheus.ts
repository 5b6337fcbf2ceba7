import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SIGNALS, type SignalDef, type SignalKey, type Signals } from './signals.js';

export interface ImmuneMetricsOptions {
  /** Also expose Node.js process metrics (process_*, nodejs_*): memory, CPU, event-loop lag. Default true. */
  processMetrics?: boolean;
}

/**
 * The Prometheus view of Signals, served at GET /metrics. It has its own
 * Registry (never prom-client's global one), so several instances (tests, an
 * embedded server) do not collide.
 */
export class ImmuneMetrics {
  readonly registry = new Registry();
  /** Content-Type of metricsText() (Prometheus text format 0.0.4). */
  readonly contentType: string = this.registry.contentType;
  private readonly histograms = new Map<SignalKey, Histogram>();
  private readonly unsubscribe: () => void;

  constructor(signals: Signals, opts: ImmuneMetricsOptions = {}) {
    for (const [key, d] of Object.entries(SIGNALS) as Array<[SignalKey, SignalDef]>) {
      const base = { name: d.prom, help: d.help, labelNames: [...d.labels], registers: [this.registry] };
      if (d.kind === 'histogram') {
        this.histograms.set(key, new Histogram({ ...base, buckets: [...(d.buckets ?? [])] }));
      } else if (d.kind === 'counter') {
        new Counter({
          ...base,
          // Values live in Signals; a scrape copies them (reset first so series Signals no longer reports vanish).
          collect(this: Counter) {
            this.reset();
            for (const s of signals.read(key)) this.inc(s.labels, s.value);
          },
        });
      } else {
        new Gauge({
          ...base,
          collect(this: Gauge) {
            this.reset();
            for (const s of signals.read(key)) this.set(s.labels, s.value);
          },
        });
      }
    }
    this.unsubscribe = signals.subscribe((key, labels, value) => this.histograms.get(key)?.observe(labels, value));
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The exposition text for GET /metrics. */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops receiving observations. */
  close(): void {
    this.unsubscribe();
  }
}
