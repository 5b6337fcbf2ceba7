import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import type { ImmuneEvent } from '../../src/domain/events.js';
import { parseVitals } from '../../src/domain/vitals.js';
import { OtelMetrics, startOtelMetrics } from '../../src/integrations/otel-metrics.js';
import { ImmuneMetrics } from '../../src/integrations/prometheus.js';
import { SIGNALS, Signals, type SignalKey } from '../../src/integrations/signals.js';

/** A real OTLP/HTTP receiver on loopback: records every request, answers with `status()`. */
interface Receiver {
  url: string;
  requests: Array<{ path: string; contentType: string; body: unknown }>;
  /** Resolves when at least n requests arrived. */
  received(n: number): Promise<void>;
  status: () => number;
  close(): Promise<void>;
}

async function receiver(): Promise<Receiver> {
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const r = { requests: [] as Receiver['requests'], status: () => 200 } as Receiver;
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.requests.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      const code = r.status();
      res.writeHead(code, { 'content-type': 'application/json' }).end(code === 200 ? '{}' : '{"message":"refused"}');
      for (const w of waiters.filter((x) => r.requests.length >= x.n)) w.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  r.received = (n) => (r.requests.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })));
  r.close = () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      // The exporter keeps its connection alive; without this, close waits for the idle timeout.
      server.closeAllConnections();
    });
  return r;
}

interface OtlpPoint {
  attributes?: Array<{ key: string; value: { stringValue?: string } }>;
  asInt?: number | string;
  asDouble?: number;
  count?: number | string;
  sum?: number;
  bucketCounts?: Array<number | string>;
  explicitBounds?: number[];
}
interface OtlpMetric {
  name: string;
  unit?: string;
  sum?: { dataPoints: OtlpPoint[]; isMonotonic?: boolean };
  gauge?: { dataPoints: OtlpPoint[] };
  histogram?: { dataPoints: OtlpPoint[] };
}
interface OtlpBody {
  resourceMetrics: Array<{ resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> }; scopeMetrics: Array<{ metrics: OtlpMetric[] }> }>;
}

const attrs = (p: OtlpPoint) => Object.fromEntries((p.attributes ?? []).map((a) => [a.key, a.value.stringValue ?? '']));
const num = (p: OtlpPoint) => Number(p.asInt ?? p.asDouble);

/** The metrics of the latest export, by name. */
function latest(r: Receiver): Map<string, OtlpMetric> {
  const body = r.requests.at(-1)?.body as OtlpBody;
  const out = new Map<string, OtlpMetric>();
  for (const rm of body.resourceMetrics) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) out.set(m.name, m);
  return out;
}

function feed(signals: Signals): void {
  for (let i = 0; i < 7; i++) signals.onVitals(parseVitals({ agent_id: `a${i % 3}`, agent_type: 'Coder', model: 'claude', success: i !== 4, error_type: i === 4 ? 'timeout' : '' }, 100 + i));
  const base = { agent_id: 'a1', actor: 'system', reason: '' };
  const events: ImmuneEvent[] = [
    { ...base, seq: 1, ts: 200, type: 'infection_detected', infection: { agent_id: 'a1', timestamp: 200, max_deviation: 3.2, anomalies: ['tool_explosion', 'latency_spike'], deviations: {}, severity: 'mild', evidence_samples: 3 }, diagnosis: { agent_id: 'a1', hypotheses: [{ diagnosis: 'infinite_loop', confidence: 0.7, reasoning: '' }] } },
    { ...base, seq: 2, ts: 200, type: 'healing_started', trigger: 'auto' },
    { ...base, seq: 3, ts: 201, type: 'action_started', attempt_id: 'a1:3', action: 'reduce_autonomy', diagnosis: 'infinite_loop', trigger: 'auto' },
    { ...base, seq: 4, ts: 202, type: 'action_applied', attempt_id: 'a1:3', action: 'reduce_autonomy', diagnosis: 'infinite_loop', detail: '' },
    { ...base, seq: 5, ts: 212.5, type: 'probation_passed', attempt_id: 'a1:3', action: 'reduce_autonomy', diagnosis: 'infinite_loop' },
  ];
  signals.onEvents(events);
}

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  // Reverse order: exporters flush into their receiver before it closes (else the exporter retries a dead port).
  for (const x of open.splice(0).reverse()) await x.close();
});

async function setup(intervalMs = 60_000, extra: Partial<ConstructorParameters<typeof Signals>[0]> = {}) {
  const r = await receiver();
  const signals = new Signals({ maxAgentSeries: 2, ...extra });
  const otel = new OtelMetrics(signals, { endpoint: r.url, serviceName: 'immune-test', exportIntervalMs: intervalMs });
  open.push(r, { close: () => otel.shutdown() });
  return { r, signals, otel };
}

describe('OtelMetrics (OTLP/HTTP export)', () => {
  it('exports the signals as OTLP JSON to <endpoint>/v1/metrics with service.name', async () => {
    const { r, signals, otel } = await setup();
    feed(signals);
    await otel.forceFlush();
    const req = r.requests.at(-1)!;
    expect(req.path).toBe('/v1/metrics');
    expect(req.contentType).toMatch(/application\/json/);
    const resource = (req.body as OtlpBody).resourceMetrics[0].resource.attributes;
    expect(resource).toContainEqual({ key: 'service.name', value: { stringValue: 'immune-test' } });

    const m = latest(r);
    const exec = m.get('agent.execution.count')!;
    expect(exec.sum?.isMonotonic).toBe(true);
    const execPoints = exec.sum!.dataPoints.map((p) => [attrs(p), num(p)]);
    expect(execPoints).toContainEqual([{ agent_type: 'Coder', model: 'claude', outcome: 'success' }, 6]);
    expect(execPoints).toContainEqual([{ agent_type: 'Coder', model: 'claude', outcome: 'failure' }, 1]);
    expect(m.get('immune.infections')!.sum!.dataPoints.map((p) => [attrs(p), num(p)])).toEqual([[{ diagnosis: 'infinite_loop', severity: 'mild' }, 1]]);
    expect(m.get('immune.infection.anomalies')!.sum!.dataPoints).toHaveLength(2);
    const outcomes = m.get('immune.healing.outcomes')!.sum!.dataPoints.map((p) => attrs(p).outcome);
    expect(outcomes.sort()).toEqual(['applied', 'healed']);

    const tth = m.get('immune.time_to_heal')!;
    expect(tth.unit).toBe('s');
    const p = tth.histogram!.dataPoints[0];
    expect(attrs(p)).toEqual({ diagnosis: 'infinite_loop' });
    expect(Number(p.count)).toBe(1);
    expect(p.sum).toBe(12.5);
    expect(p.explicitBounds).toEqual(SIGNALS.timeToHeal.buckets);
    expect(Number(m.get('immune.time_to_detect')!.histogram!.dataPoints[0].sum)).toBe(3);
    expect(otel.stats()).toEqual({ exports: 1, failures: 0 });
  });

  it('exports the same numbers Prometheus serves, series for series', async () => {
    const { r, signals, otel } = await setup(60_000, { agentStates: () => ({ healthy: 3, quarantined: 1 }), activeIncidents: () => 0, webhookStats: () => ({ sent: 2, failed: 0, dropped: 1 }) });
    const prom = new ImmuneMetrics(signals, { processMetrics: false });
    feed(signals);
    await otel.forceFlush();
    const m = latest(r);
    const json = await prom.registry.getMetricsAsJSON();
    let compared = 0;
    for (const [key, d] of Object.entries(SIGNALS) as Array<[SignalKey, (typeof SIGNALS)[SignalKey]]>) {
      if (d.kind === 'histogram') continue;
      const promValues = (json.find((x) => x.name === d.prom)?.values ?? []).map((v) => JSON.stringify([v.labels, v.value])).sort();
      const o = m.get(d.otel);
      const otelValues = (o?.sum ?? o?.gauge)?.dataPoints.map((p) => JSON.stringify([attrs(p), num(p)])).sort() ?? [];
      // Label-less Prometheus metrics always show 0; OTLP omits an instrument that has no data point yet.
      const nonZeroProm = promValues.filter((v) => !v.startsWith('[{},0]'));
      expect(otelValues, key).toEqual(o ? promValues : nonZeroProm);
      compared += promValues.length;
    }
    expect(compared).toBeGreaterThan(15);
    prom.close();
  });

  it('exports on its own every OTEL_METRIC_EXPORT_INTERVAL_MS', async () => {
    const { r, signals } = await setup(150);
    feed(signals);
    await r.received(2);
    expect(latest(r).get('agent.execution.count')).toBeDefined();
  });

  it('counts a refused export without throwing, then recovers', async () => {
    const { r, signals, otel } = await setup();
    feed(signals);
    r.status = () => 400;
    await otel.forceFlush();
    expect(otel.stats()).toEqual({ exports: 0, failures: 1 });
    r.status = () => 200;
    await otel.forceFlush();
    expect(otel.stats()).toEqual({ exports: 1, failures: 1 });
  });

  it('flushes pending data on shutdown, and shutdown is idempotent', async () => {
    const { r, signals, otel } = await setup();
    feed(signals);
    expect(r.requests).toHaveLength(0);
    await otel.shutdown();
    await otel.shutdown();
    expect(r.requests).toHaveLength(1);
    expect(latest(r).get('immune.infections')).toBeDefined();
  });

  it('is off when OTEL_EXPORTER_OTLP_ENDPOINT is unset, and reads the seed variables when set', async () => {
    const signals = new Signals({ maxAgentSeries: 1 });
    expect(startOtelMetrics(signals, parseConfig({}))).toBeNull();
    const r = await receiver();
    open.push(r);
    const cfg = parseConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: `${r.url}/`, OTEL_SERVICE_NAME: 'from-env', OTEL_METRIC_EXPORT_INTERVAL_MS: '60000' });
    const otel = startOtelMetrics(signals, cfg)!;
    open.push({ close: () => otel.shutdown() });
    await otel.forceFlush();
    expect(r.requests[0].path).toBe('/v1/metrics');
    expect((r.requests[0].body as OtlpBody).resourceMetrics[0].resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'from-env' } });
  });
});
