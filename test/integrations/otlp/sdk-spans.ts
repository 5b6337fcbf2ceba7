/**
 * Spans made by the real OpenTelemetry JS SDK, and the exact bytes its OTLP
 * exporters put on the wire (captured by a loopback HTTP server), so the
 * decoders are tested against what instrumented agents really send.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** A fixed start so expected timestamps are literal numbers: 2023-11-14T22:13:20Z. */
export const T0_MS = 1_700_000_000_000;

export async function recordSpans(build: (tracer: Tracer) => void, resource: Attributes = { 'service.name': 'checkout-agent' }): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes(resource), spanProcessors: [new SimpleSpanProcessor(memory)] });
  build(provider.getTracer('agent-immune-test'));
  await provider.forceFlush();
  const spans = memory.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

export interface AgentRunExpectation {
  latency_ms: number;
  input_tokens: number;
  output_tokens: number;
  tool_calls: number;
  tool_names: string[];
  retries: number;
}

/**
 * One agent invocation as a GenAI-instrumented framework records it:
 * invoke_agent (0–1000 ms) owning chat (0–200, fails with a rate limit),
 * chat (210–300, the retry), execute_tool search (300–450), an HTTP span
 * (460–700) wrapping chat (470–690), execute_tool fetch (700–800) and a final
 * chat (800–990). Returns what the vitals record must say.
 */
export function agentRun(tracer: Tracer, t0 = T0_MS, agentId = 'planner-7'): AgentRunExpectation {
  const agent = tracer.startSpan('invoke_agent Planner', {
    kind: SpanKind.INTERNAL,
    startTime: t0,
    attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.id': agentId, 'gen_ai.agent.name': 'Planner', 'gen_ai.provider.name': 'openai' },
  });
  const inAgent = trace.setSpan(context.active(), agent);
  const chat = (start: number, end: number, inTok: number, outTok: number, parent = inAgent, failed = false) => {
    const s = tracer.startSpan('chat gpt-4o', {
      kind: SpanKind.CLIENT,
      startTime: t0 + start,
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.response.model': 'gpt-4o-2024-08-06',
        'gen_ai.provider.name': 'openai',
        'gen_ai.system_instructions': JSON.stringify([{ type: 'text', content: 'You are a careful planner.' }]),
        ...(failed ? { 'error.type': 'rate_limit_exceeded' } : { 'gen_ai.usage.input_tokens': inTok, 'gen_ai.usage.output_tokens': outTok }),
      },
    }, parent);
    if (failed) s.setStatus({ code: SpanStatusCode.ERROR, message: '429 Too Many Requests' });
    s.end(t0 + end);
  };
  const tool = (name: string, start: number, end: number) => {
    tracer.startSpan(`execute_tool ${name}`, { startTime: t0 + start, attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': name } }, inAgent).end(t0 + end);
  };
  chat(0, 200, 0, 0, inAgent, true);
  chat(210, 300, 100, 20);
  tool('search', 300, 450);
  const http = tracer.startSpan('POST /v1/chat/completions', { kind: SpanKind.CLIENT, startTime: t0 + 460, attributes: { 'http.request.method': 'POST' } }, inAgent);
  chat(470, 690, 150, 30, trace.setSpan(context.active(), http));
  http.end(t0 + 700);
  tool('fetch', 700, 800);
  chat(800, 990, 200, 50);
  agent.end(t0 + 1000);
  return { latency_ms: 1000, input_tokens: 450, output_tokens: 100, tool_calls: 2, tool_names: ['search', 'fetch'], retries: 1 };
}

/** ExportResultCode.SUCCESS of @opentelemetry/core (not a direct dependency of the product). */
const EXPORT_SUCCESS = 0;

export type ExporterKind = 'protobuf' | 'json';

export function makeExporter(kind: ExporterKind, url: string, headers: Record<string, string>, gzip = false): ProtoExporter | JsonExporter {
  const config = { url, headers, compression: gzip ? ('gzip' as never) : ('none' as never), timeoutMillis: 5000 };
  return kind === 'protobuf' ? new ProtoExporter(config) : new JsonExporter(config);
}

/** Exports spans with a real exporter and resolves with the export result code (SUCCESS or FAILED) and error. */
export function exportWith(exporter: ProtoExporter | JsonExporter, spans: ReadableSpan[]): Promise<{ ok: boolean; error?: Error }> {
  return new Promise((resolve) => exporter.export(spans, (r) => resolve({ ok: r.code === EXPORT_SUCCESS, error: r.error })));
}

/** The request an OTLP exporter sends for these spans: body bytes as sent (maybe gzip) and headers. */
export async function captureExport(spans: ReadableSpan[], kind: ExporterKind, gzip = false): Promise<{ body: Buffer; headers: IncomingHttpHeaders }> {
  let captured: { body: Buffer; headers: IncomingHttpHeaders } | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      captured = { body: Buffer.concat(chunks), headers: req.headers };
      res.writeHead(200, { 'content-type': kind === 'protobuf' ? 'application/x-protobuf' : 'application/json' });
      res.end(kind === 'protobuf' ? '' : '{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    const exporter = makeExporter(kind, `http://127.0.0.1:${port}/v1/traces`, {}, gzip);
    const result = await exportWith(exporter, spans);
    await exporter.shutdown();
    if (!result.ok || captured === undefined) throw new Error(`capture failed: ${result.error?.message ?? 'no request'}`);
    return captured;
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}
