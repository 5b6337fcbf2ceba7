/** OpenTelemetry GenAI trace ingest: the public surface other modules use (see docs/OTLP.md). */
export { otlpTraceRoutes, OTLP_TRACES_PATH, type OtlpTraceRoutesOptions } from './routes.js';
export { OtlpTraceReceiver, DEFAULT_RECEIVER_LIMITS, SPAN_SKIP_REASONS, type OtlpReceiverOptions, type OtlpReceiverLimits, type OtlpReceiverStats, type OtlpSkipReason, type ExportOutcome } from './trace-receiver.js';
