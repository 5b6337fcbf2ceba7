import { ValueType, type Attributes, type Histogram } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type InstrumentType, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { SIGNALS, type SignalDef, type SignalKey, type Signals } from './signals.js';

export interface OtelMetricsOptions {
  /** OTLP/HTTP base endpoint (OTEL_EXPORTER_OTLP_ENDPOINT), e.g. http://localhost:4318; /v1/metrics is appended. */
  endpoint: string;
  /** resource service.name (OTEL_SERVICE_NAME). */
  serviceName: string;
  /** OTEL_METRIC_EXPORT_INTERVAL_MS. */
  exportIntervalMs: number;
  serviceVersion?: string;
  log?: Logger;
}

type ExportResult = Parameters<Parameters<PushMetricExporter['export']>[1]>[0];
/** ExportResultCode.SUCCESS of @opentelemetry/core (not a direct dependency of this package). */
const EXPORT_SUCCESS = 0;

export interface OtelExportStats {
  exports: number;
  failures: number;
}

/**
 * Wraps the OTLP exporter to see each export's result: the SDK otherwise sends
 * failures to a process-wide error handler, and a collector that is down should
 * produce one warning (and one "recovered" line), not a silent gap or a log flood.
 */
class ObservedExporter implements PushMetricExporter {
  readonly stats: OtelExportStats = { exports: 0, failures: 0 };
  private failing = false;

  constructor(
    private readonly inner: OTLPMetricExporter,
    private readonly url: string,
    private readonly log?: Logger,
  ) {}

  export(metrics: ResourceMetrics, done: (result: ExportResult) => void): void {
    this.inner.export(metrics, (result) => {
      if (result.code === EXPORT_SUCCESS) {
        this.stats.exports += 1;
        if (this.failing) this.log?.info({ url: this.url }, 'OTLP metrics export recovered');
        this.failing = false;
      } else {
        this.stats.failures += 1;
        if (!this.failing) this.log?.warn({ url: this.url, err: result.error }, 'OTLP metrics export failed; retrying every interval');
        this.failing = true;
      }
      done(result);
    });
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  selectAggregationTemporality(type: InstrumentType) {
    return this.inner.selectAggregationTemporality(type);
  }
}

/**
 * Exports the same Signals as /metrics over OTLP/HTTP (JSON encoding, cumulative
 * temporality) every interval. Counters and gauges are observed from Signals at
 * export time; histograms are recorded as observations happen.
 */
export class OtelMetrics {
  private readonly provider: MeterProvider;
  private readonly exporter: ObservedExporter;
  private readonly unsubscribe: () => void;
  private closed: Promise<void> | null = null;

  constructor(signals: Signals, opts: OtelMetricsOptions) {
    const url = `${opts.endpoint.replace(/\/+$/, '')}/v1/metrics`;
    // The reader refuses a timeout longer than its interval; an export should never outlive the next one.
    const timeout = Math.min(10_000, opts.exportIntervalMs);
    this.exporter = new ObservedExporter(new OTLPMetricExporter({ url, timeoutMillis: timeout }), url, opts.log);
    this.provider = new MeterProvider({
      resource: resourceFromAttributes({ 'service.name': opts.serviceName, ...(opts.serviceVersion ? { 'service.version': opts.serviceVersion } : {}) }),
      readers: [new PeriodicExportingMetricReader({ exporter: this.exporter, exportIntervalMillis: opts.exportIntervalMs, exportTimeoutMillis: timeout })],
    });
    const meter = this.provider.getMeter('agent-immune');
    const histograms = new Map<SignalKey, Histogram>();
    for (const [key, d] of Object.entries(SIGNALS) as Array<[SignalKey, SignalDef]>) {
      const o = { description: d.help, unit: d.unit, valueType: ValueType.INT };
      if (d.kind === 'histogram') {
        histograms.set(key, meter.createHistogram(d.otel, { ...o, valueType: ValueType.DOUBLE, advice: { explicitBucketBoundaries: [...(d.buckets ?? [])] } }));
        continue;
      }
      const instrument = d.kind === 'counter' ? meter.createObservableCounter(d.otel, o) : meter.createObservableGauge(d.otel, o);
      instrument.addCallback((result) => {
        for (const s of signals.read(key)) result.observe(s.value, s.labels as Attributes);
      });
    }
    this.unsubscribe = signals.subscribe((key, labels, value) => histograms.get(key)?.record(value, labels as Attributes));
  }

  /** Export results so far (for status pages and tests). */
  stats(): OtelExportStats {
    return { ...this.exporter.stats };
  }

  /** Collects and exports now (resolves when the export finished, successfully or not). */
  forceFlush(): Promise<void> {
    return this.provider.forceFlush();
  }

  /** Exports what is pending, then stops. Safe to call twice. */
  shutdown(): Promise<void> {
    this.closed ??= (async () => {
      this.unsubscribe();
      await this.provider.shutdown();
    })();
    return this.closed;
  }
}

/** An OtelMetrics when OTEL_EXPORTER_OTLP_ENDPOINT is set, else null (export disabled). */
export function startOtelMetrics(signals: Signals, cfg: Pick<Config, 'otlpEndpoint' | 'otelServiceName' | 'otelMetricExportIntervalMs'>, log?: Logger, serviceVersion?: string): OtelMetrics | null {
  if (cfg.otlpEndpoint === '') return null;
  return new OtelMetrics(signals, { endpoint: cfg.otlpEndpoint, serviceName: cfg.otelServiceName, exportIntervalMs: cfg.otelMetricExportIntervalMs, log, serviceVersion });
}
