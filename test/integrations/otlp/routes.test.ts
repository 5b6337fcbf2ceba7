/**
 * End to end: a real fastify server on loopback with the OTLP plugin, and the
 * real OpenTelemetry JS SDK exporting over OTLP/HTTP (protobuf and JSON, plain
 * and gzip). The receiver's clock is injected so the grace period ends when the
 * test says, not after a sleep.
 */
import { gzipSync } from 'node:zlib';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImmuneError } from '../../../src/domain/errors.js';
import type { Vitals } from '../../../src/domain/vitals.js';
import { OtlpTraceReceiver, otlpTraceRoutes } from '../../../src/integrations/otlp/index.js';
import { agentRun, exportWith, makeExporter, recordSpans, T0_MS, type ExporterKind } from './sdk-spans.js';

const KEY = 'test-ingest-key';

let app: FastifyInstance;
let receiver: OtlpTraceReceiver;
let records: Vitals[];
let clock: number;
let url: string;

function authenticate(req: FastifyRequest): void {
  if (req.headers['x-api-key'] !== KEY) throw new ImmuneError('IMM_ERR_UNAUTHORIZED', 'missing or wrong X-API-KEY');
}

beforeEach(async () => {
  records = [];
  clock = T0_MS + 5_000;
  receiver = new OtlpTraceReceiver({ onVitals: (r) => records.push(...r), now: () => clock, limits: { graceMs: 2_000 } });
  app = Fastify();
  await app.register(otlpTraceRoutes({ receiver, authenticate, bodyLimitBytes: 256 * 1024 }));
  // A sibling route proves the plugin's raw-body parsers and error handler stay in its own scope.
  app.post('/api/echo', async (req) => ({ ok: true, body: req.body }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  url = `http://127.0.0.1:${addr.port}/v1/traces`;
});

afterEach(async () => {
  await app.close();
});

describe.each<[ExporterKind, boolean, 'simple' | 'batch']>([
  ['protobuf', false, 'simple'],
  ['protobuf', true, 'batch'],
  ['json', false, 'batch'],
  ['json', true, 'simple'],
])('OpenTelemetry SDK → OTLP/HTTP %s (gzip %s, %s processor) → vitals', (kind, gzip, processor) => {
  it('turns one agent invocation with chat and execute_tool children into exactly one record', async () => {
    const exporter = makeExporter(kind, url, { 'X-API-KEY': KEY }, gzip);
    const spanProcessor = processor === 'simple' ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter, { scheduledDelayMillis: 60_000 });
    const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'checkout-agent' }), spanProcessors: [spanProcessor] });
    const expected = agentRun(provider.getTracer('my-agent'));
    await provider.forceFlush();
    await provider.shutdown();

    const stats = receiver.stats();
    // The simple processor sends one export per span (assembly across 8 exports); the batch processor one export.
    expect(stats.exports_received).toBe(processor === 'simple' ? 8 : 1);
    expect(stats.spans_received).toBe(8);
    expect(stats.spans_skipped.no_genai_attributes).toBe(1); // the HTTP span: kept as a link, not a record
    expect(records).toHaveLength(0); // still inside the grace period

    clock += 2_000;
    expect(receiver.flush()).toBe(1);
    expect(records).toHaveLength(1);
    const v = records[0];
    expect(v).toMatchObject({
      agent_id: 'planner-7',
      agent_type: 'Planner',
      latency_ms: expected.latency_ms,
      input_tokens: expected.input_tokens,
      output_tokens: expected.output_tokens,
      token_count: expected.input_tokens + expected.output_tokens,
      tool_calls: expected.tool_calls,
      tool_names: expected.tool_names,
      retries: expected.retries,
      success: true,
      error_type: '',
      model: 'gpt-4o-2024-08-06',
      provider: 'openai',
    });
    expect(v.timestamp).toBeCloseTo((T0_MS + 1000) / 1000, 6);
    expect(v.prompt_hash).toMatch(/^[0-9a-f]{16}$/);
    expect(receiver.stats()).toMatchObject({ records_emitted: 1, records_invalid: 0, decode_errors: 0 });

    // Nothing else is pending: later ticks produce nothing more.
    clock += 60_000;
    expect(receiver.flush()).toBe(0);
    expect(records).toHaveLength(1);
  });

  it('refuses an exporter without the ingest key, keeping nothing', async () => {
    const spans = await recordSpans((t) => agentRun(t));
    const exporter = makeExporter(kind, url, { 'X-API-KEY': 'wrong' }, gzip);
    const result = await exportWith(exporter, spans);
    await exporter.shutdown();
    expect(result.ok).toBe(false);
    expect(result.error?.message ?? '').toMatch(/401|Unauthorized/i);
    expect(receiver.stats().exports_received).toBe(0);
    expect(receiver.close()).toBe(0);
  });
});

describe('OpenTelemetry SDK → model calls without an agent span', () => {
  it('gives one record per model call, attributed to the service', async () => {
    const exporter = makeExporter('protobuf', url, { 'X-API-KEY': KEY });
    const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'support bot' }), spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracer = provider.getTracer('app');
    const request = tracer.startSpan('POST /answer', { kind: SpanKind.SERVER, startTime: T0_MS });
    const inRequest = trace.setSpan(context.active(), request);
    tracer.startSpan('embeddings', { startTime: T0_MS + 5, attributes: { 'gen_ai.operation.name': 'embeddings', 'gen_ai.request.model': 'text-embedding-3-small', 'gen_ai.usage.input_tokens': 12 } }, inRequest).end(T0_MS + 25);
    tracer.startSpan('chat', { startTime: T0_MS + 30, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.system': 'openai', 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.usage.prompt_tokens': 300, 'gen_ai.usage.completion_tokens': 40 } }, inRequest).end(T0_MS + 430);
    request.end(T0_MS + 450);
    await provider.forceFlush();
    await provider.shutdown();

    clock += 2_000;
    receiver.flush();
    const byModel = Object.fromEntries(records.map((r) => [r.model, r]));
    expect(records).toHaveLength(2);
    expect(byModel['gpt-4o-mini']).toMatchObject({ agent_id: 'support_bot', agent_type: 'otel', latency_ms: 400, input_tokens: 300, output_tokens: 40, provider: 'openai', tool_calls: 0 });
    expect(byModel['text-embedding-3-small']).toMatchObject({ agent_id: 'support_bot', latency_ms: 20, input_tokens: 12, output_tokens: 0 });
  });
});

async function post(body: Buffer | string, headers: Record<string, string>): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'x-api-key': KEY, ...headers }, body });
}

describe('POST /v1/traces over HTTP', () => {
  it('answers 200 with partial_success naming the skipped spans (JSON)', async () => {
    const body = JSON.stringify({
      resourceSpans: [{
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
        scopeSpans: [{ spans: [
          { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', name: 'GET /', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' },
          { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'c7ad6b7169203331', name: 'chat', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000050000000',
            attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: 'chat' } }, { key: 'gen_ai.request.model', value: { stringValue: 'm' } }] },
          { traceId: '', spanId: 'd7ad6b7169203331', name: 'chat', startTimeUnixNano: '1', endTimeUnixNano: '2', attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: 'chat' } }] },
        ] }],
      }],
    });
    const res = await post(body, { 'content-type': 'application/json' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toEqual({ partialSuccess: { rejectedSpans: '2', errorMessage: '2 of 3 spans skipped: 1 no_genai_attributes, 1 invalid_span' } });
  });

  it('answers 200 with an empty ExportTraceServiceResponse when everything was accepted (protobuf)', async () => {
    const res = await post(Buffer.alloc(0), { 'content-type': 'application/x-protobuf' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-protobuf');
    expect(Buffer.from(await res.arrayBuffer())).toHaveLength(0);
  });

  it('answers 400 for malformed protobuf with a google.rpc.Status naming the problem, and counts it', async () => {
    const res = await post(Buffer.from([0x0a, 0x05, 0x12]), { 'content-type': 'application/x-protobuf' });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/x-protobuf');
    const text = Buffer.from(await res.arrayBuffer()).toString('utf8');
    expect(text).toContain('IMM_ERR_VALIDATION');
    expect(text).toContain('length 5 runs past the end');
    expect(receiver.stats().decode_errors).toBe(1);
  });

  it('answers 400 IMM_ERR_MALFORMED_JSON for a JSON body that is not JSON', async () => {
    const res = await post('{"resourceSpans": [', { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ ok: false, code: 'IMM_ERR_MALFORMED_JSON' });
  });

  it('answers 400 for a corrupt gzip body and 413 for one that inflates past the cap', async () => {
    const corrupt = await post(Buffer.from('not gzip at all'), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(corrupt.status).toBe(400);
    expect(await corrupt.json()).toMatchObject({ code: 'IMM_ERR_VALIDATION', field: 'content-encoding' });

    const small = new OtlpTraceReceiver({ onVitals: () => {}, limits: { maxInflatedBytes: 1024 } });
    const app2 = Fastify();
    await app2.register(otlpTraceRoutes({ receiver: small, authenticate }));
    const bomb = gzipSync(Buffer.alloc(1024 * 1024, 0x20)); // 1 MiB of spaces, ~1 KiB compressed
    const res = await app2.inject({ method: 'POST', url: '/v1/traces', headers: { 'x-api-key': KEY, 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: bomb });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'IMM_ERR_BODY_TOO_LARGE' });
    await app2.close();
  });

  it('answers 500 for a receiver that fails unexpectedly: the cause goes to the log, not to the client', async () => {
    const failing = new OtlpTraceReceiver({ onVitals: () => {} });
    failing.receiveBody = async () => {
      throw new Error('disk on fire');
    };
    const logged: string[] = [];
    const app2 = Fastify({ logger: { level: 'error', stream: { write: (line: string) => void logged.push(line) } } });
    await app2.register(otlpTraceRoutes({ receiver: failing, authenticate }));
    const res = await app2.inject({ method: 'POST', url: '/v1/traces', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, payload: '{}' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ ok: false, code: 'IMM_ERR_INTERNAL', error: 'internal error; see the server log' });
    expect(logged.some((l) => l.includes('otlp: request failed') && l.includes('disk on fire'))).toBe(true);
    await app2.close();
  });

  it('answers 413 for a body over the route limit', async () => {
    const res = await post(Buffer.alloc(300 * 1024), { 'content-type': 'application/x-protobuf' });
    expect(res.status).toBe(413);
  });

  it('answers 415 for other content types and encodings, before reading the body', async () => {
    const text = await post('hello', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(await text.json()).toMatchObject({ code: 'IMM_ERR_UNSUPPORTED_MEDIA' });
    const br = await post('{}', { 'content-type': 'application/json', 'content-encoding': 'br' });
    expect(br.status).toBe(415);
    expect(((await br.json()) as { error: string }).error).toContain("'br'");
    expect(receiver.stats()).toMatchObject({ exports_received: 0, decode_errors: 0 });
  });

  it('checks the key before anything else', async () => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ ok: false, code: 'IMM_ERR_UNAUTHORIZED' });
    // A small body is drained after the refusal, so the connection stays usable (an exporter still
    // writing it reads the 401 instead of failing with EPIPE on a closed socket).
    expect(res.headers.get('connection')).not.toBe('close');
    // A large one is not read: the connection closes, or the idle-looking keep-alive socket would
    // hold the server's shutdown for fastify's 72 s keepAliveTimeout.
    const big = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: Buffer.alloc(200 * 1024) });
    expect(big.status).toBe(401);
    expect(big.headers.get('connection')).toBe('close');
  });

  it('is described in the OpenAPI document when @fastify/swagger is registered', async () => {
    const app3 = Fastify();
    // The product's app declares the ingestKey scheme the route refers to (src/server/app.ts).
    const components = { securitySchemes: { ingestKey: { type: 'apiKey' as const, in: 'header', name: 'X-API-KEY' } } };
    await app3.register(fastifySwagger, { openapi: { openapi: '3.1.0', info: { title: 't', version: '1' }, components } });
    await app3.register(otlpTraceRoutes({ receiver, authenticate }));
    await app3.ready();
    const doc = app3.swagger() as { paths: Record<string, { post?: { summary?: string; security?: unknown } }> };
    expect(doc.paths['/v1/traces']?.post?.summary).toMatch(/OTLP\/HTTP trace export/);
    expect(doc.paths['/v1/traces']?.post?.security).toEqual([{ ingestKey: [] }]);
    await app3.close();
  });

  it('leaves the JSON parsing of sibling routes alone', async () => {
    const res = await fetch(url.replace('/v1/traces', '/api/echo'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(await res.json()).toEqual({ ok: true, body: { a: 1 } });
  });
});
