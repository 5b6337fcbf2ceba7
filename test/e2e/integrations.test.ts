import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { context, SpanKind, trace, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImmuneReporter, instrumentOpenAI, verifySignature, type Directive } from '../../sdk/typescript/src/index.js';
import { seededRandom } from '../../src/sim/random.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { startImmune, type ImmuneProcess } from '../support/immune-process.js';
import { until } from '../support/scripted-http.js';

/*
 * The three integrations against the real product (`immune run`, what
 * `npm start` runs, simulated fleet included): a Python agent using sdk/python/immune_sdk.py, a TypeScript agent
 * whose official openai client is instrumented with instrumentOpenAI (against
 * a local OpenAI-compatible server), and an agent instrumented with the real
 * OpenTelemetry SDK exporting GenAI spans to POST /v1/traces, healed through
 * its signed control URL. Each learns a baseline, gets a fault injected, is
 * quarantined (severe: this test approves like an operator would), receives
 * the directive, applies it with its own tiny "cure" logic, and is released
 * by probation.
 *
 * HEALING_STEP_DELAY_SECONDS is 2.5 s because the OTLP receiver holds spans
 * for a 2 s grace period: spans exported before the agent stopped itself must
 * arrive while it is still contained, not during probation.
 */

const INGEST_KEY = 'e2e-ingest-key-0123456789';
const OPERATOR_TOKEN = 'e2e-operator-token-0123456789';
const SECRET = 'e2e-webhook-secret-0123456789';
const SDK_PY = fileURLToPath(new URL('../../sdk/python/', import.meta.url));

const PY_AGENT = 'py-research-agent';
const TS_AGENT = 'ts-support-agent';
const OTEL_AGENT = 'otel-planner-agent';
const AGENTS = [PY_AGENT, TS_AGENT, OTEL_AGENT];

let immune: ImmuneProcess;
let fake: FakeOpenAI;
const approvals: string[] = [];
let operatorLoop: NodeJS.Timeout | null = null;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function op(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(immune.url + path, { method, headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return res.json();
}

async function statusOf(id: string): Promise<string | null> {
  const res = await fetch(`${immune.url}/api/v1/agents/${id}`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
  return res.status === 200 ? ((await res.json()) as { agent: { status: string } }).agent.status : null;
}

async function historyOf(id: string): Promise<Array<{ type: string; actor: string; action?: string; detail?: string; seq: number }>> {
  return (await op('GET', `/api/v1/agents/${id}`)).history;
}

/** What happened to each agent, for failure messages: its audit trail and what the agents saw. */
async function story(extra: Record<string, unknown>): Promise<string> {
  const lines: string[] = [];
  for (const id of AGENTS) {
    const h = await historyOf(id).catch(() => []);
    lines.push(`${id}: ${[...h].reverse().map((e: any) => `${e.type}${e.action ? `(${e.action})` : ''}${e.type === 'infection_detected' ? `(${e.infection.anomalies.join('+')} ${e.infection.max_deviation.toFixed(1)}σ → ${e.diagnosis.hypotheses[0].diagnosis})` : ''}`).join(' → ')}`);
  }
  return `${lines.join('\n')}\n${JSON.stringify(extra)}`;
}

/** until(), with the story of every agent when it times out. */
async function waitFor(cond: () => Promise<boolean>, what: string, timeoutMs: number, extra: () => Record<string, unknown>): Promise<void> {
  try {
    await until(cond, what, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await story(extra())}`);
  }
}

// ───────────────────────────── Python agent ─────────────────────────────

/** A research agent whose context bloats (memory corruption): input tokens ×8 and every other task fails. Cured by clearing memory. */
const PYTHON_AGENT = `
import json, os, random, sys, threading, time
from immune_sdk import ImmuneReporter
rnd = random.Random(11)
state = {"fault": False, "stop": False}
def emit(**kw):
    print(json.dumps(kw), flush=True)
CURES = ("reset_memory", "reset_agent")
def on_directive(d):
    cured = state["fault"] and d["action"] in CURES
    if cured:
        state["fault"] = False
    emit(event="directive", action=d["action"], diagnosis=d["diagnosis"], cured=cured)
    return {"ok": True, "detail": "context cleared" if cured else d["action"] + " applied; the bloated context remains"}
r = ImmuneReporter(os.environ["AGENT_ID"], base_url=os.environ["BASE"], agent_type="Research", model="llama-3.1-70b",
                   api_key=os.environ["KEY"], on_directive=on_directive, on_status=lambda s, p: emit(event="status", status=s),
                   flush_interval=0.1, poll_interval=0.2)
def commands():
    for line in sys.stdin:
        if line.strip() == "fault":
            state["fault"] = True
            emit(event="fault")
        elif line.strip() == "stop":
            break
    state["stop"] = True
threading.Thread(target=commands, daemon=True).start()
n = 0
while not state["stop"]:
    if r.quarantined:  # contained: stop working; the SDK polls for the directive
        time.sleep(0.05)
        continue
    n += 1
    k = 8 if state["fault"] else 1
    failed = state["fault"] and n % 2 == 0
    r.report(input_tokens=int(900 * rnd.lognormvariate(0, 0.1) * k), output_tokens=int(350 * rnd.lognormvariate(0, 0.1)),
             latency_ms=round(420 * rnd.lognormvariate(0, 0.15), 1), tool_calls=2, success=not failed,
             error_type="context_overflow" if failed else "", cost=0.004, prompt_hash="research-v1")
    time.sleep(0.05)
r.close()
emit(event="stopped", stats=r.stats())
`;

interface PyAgent {
  child: ChildProcess;
  events: Array<Record<string, any>>;
  output: () => string;
  send: (cmd: string) => void;
  exited: Promise<number | null>;
}

function startPythonAgent(): PyAgent {
  const child = spawn('python3', ['-S', '-c', PYTHON_AGENT], {
    env: { ...process.env, PYTHONPATH: SDK_PY, PYTHONDONTWRITEBYTECODE: '1', AGENT_ID: PY_AGENT, BASE: immune.url, KEY: INGEST_KEY },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const events: Array<Record<string, any>> = [];
  let out = '';
  let partial = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
    partial += b.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) if (l.startsWith('{')) events.push(JSON.parse(l));
  });
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, events, output: () => out, send: (cmd) => child.stdin!.write(`${cmd}\n`), exited };
}

// ───────────────────────────── TypeScript + openai agent ─────────────────────────────

/**
 * A support agent on the openai client. Its fault: its sampling settings drift to temperature 1.9 and the
 * model rambles (completions ×10, see the fake server below). Cured by bounding generation again
 * (reduce_autonomy: temperature 0.3 and a max_tokens guard) or by a reset; other actions do not help.
 */
class OpenAIAgent {
  readonly reporter: ImmuneReporter;
  readonly client: OpenAI;
  readonly directives: Array<{ action: string; cured: boolean }> = [];
  private maxTokens: number | undefined;
  temperature = 0.3;
  private stopped = false;
  private loop: Promise<void> | null = null;

  constructor(base: string, baseURL: string) {
    this.reporter = new ImmuneReporter({
      agent_id: TS_AGENT,
      base_url: base,
      api_key: INGEST_KEY,
      agent_type: 'Support',
      model: 'gpt-4o-mini',
      flush_interval: 0.1,
      poll_interval: 0.2,
      flush_on_exit: false,
      on_directive: (d) => this.apply(d),
    });
    this.client = instrumentOpenAI(new OpenAI({ apiKey: 'sk-test', baseURL, maxRetries: 0 }), this.reporter, { prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } } });
  }

  private apply(d: Directive): string {
    const bounds = d.action === 'reduce_autonomy' || d.action === 'reset_agent';
    const cured = bounds && this.temperature > 1;
    if (bounds) {
      this.temperature = 0.3;
      this.maxTokens = 1000;
    }
    this.directives.push({ action: d.action, cured });
    return cured ? 'generation bounded: temperature 0.3, max_tokens 1000' : `${d.action} applied; generation is still unbounded`;
  }

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        if (this.reporter.quarantined) {
          await sleep(50);
          continue;
        }
        await this.client.chat.completions.create({
          model: 'gpt-4o-mini',
          messages: [
            { role: 'system', content: 'You answer customer questions about billing.' },
            { role: 'user', content: 'Why was I charged twice?' },
          ],
          temperature: this.temperature,
          ...(this.maxTokens ? { max_tokens: this.maxTokens } : {}),
        });
        await sleep(30);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.reporter.close(2);
  }
}

// ───────────────────────────── OpenTelemetry agent ─────────────────────────────

/** A planner instrumented with OpenTelemetry (GenAI spans). Its fault: a tool loop (×8 tool calls). Healed through its control URL. */
class OtelAgent {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  private readonly rnd = seededRandom(23);
  private server: Server | null = null;
  private stopped = false;
  private loop: Promise<void> | null = null;
  contained = false;
  looping = false;
  readonly directives: Array<{ action: string; cured: boolean; signed: boolean }> = [];

  constructor(private readonly base: string) {
    const exporter = new OTLPTraceExporter({ url: `${base}/v1/traces`, headers: { 'x-api-key': INGEST_KEY } });
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'planner-service' }),
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 100 })],
    });
    this.tracer = this.provider.getTracer('planner', '1.0.0');
  }

  /** The control URL: verifies the signature, applies the action, answers {ok, detail}. */
  async listen(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const signed = verifySignature(SECRET, raw, req.headers);
        if (!signed) {
          res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error: 'bad signature' }));
          return;
        }
        const d = JSON.parse(raw) as { action: string };
        const cured = this.looping && ['revoke_tools', 'reduce_autonomy', 'reset_agent'].includes(d.action);
        if (cured) this.looping = false;
        this.directives.push({ action: d.action, cured, signed });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, detail: cured ? `${d.action}: the looping tool is gone` : `${d.action} applied; still looping` }));
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/immune`;
  }

  private invocation(): void {
    const now = Date.now();
    const latency = 600 * this.rnd.logNormal(0.15) * (this.looping ? 3 : 1);
    const t0 = now - latency;
    const agent = this.tracer.startSpan('invoke_agent Planner', {
      kind: SpanKind.INTERNAL,
      startTime: t0,
      attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.id': OTEL_AGENT, 'gen_ai.agent.name': 'Planner', 'gen_ai.provider.name': 'anthropic' },
    });
    const inAgent = trace.setSpan(context.active(), agent);
    const chat = (start: number, end: number) =>
      this.tracer
        .startSpan('chat claude-sonnet-4', {
          kind: SpanKind.CLIENT,
          startTime: t0 + start * latency,
          attributes: {
            'gen_ai.operation.name': 'chat',
            'gen_ai.request.model': 'claude-sonnet-4',
            'gen_ai.provider.name': 'anthropic',
            'gen_ai.system_instructions': 'You plan multi-step research tasks.',
            'gen_ai.usage.input_tokens': Math.round(700 * this.rnd.logNormal(0.1)),
            'gen_ai.usage.output_tokens': Math.round(250 * this.rnd.logNormal(0.1)),
          },
        }, inAgent)
        .end(t0 + end * latency);
    chat(0, 0.3);
    const tools = this.looping ? 24 : 3;
    for (let i = 0; i < tools; i++) {
      const a = 0.3 + (0.4 * i) / tools;
      this.tracer.startSpan('execute_tool search', { startTime: t0 + a * latency, attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search' } }, inAgent).end(t0 + (a + 0.3 / tools) * latency);
    }
    chat(0.7, 1);
    agent.end(now);
  }

  start(): void {
    this.loop = (async () => {
      let lastPoll = 0;
      while (!this.stopped) {
        // No SDK here: the agent asks for its status itself (the documented poll) and pauses while contained.
        if (Date.now() - lastPoll > 200) {
          lastPoll = Date.now();
          const res = await fetch(`${this.base}/api/v1/agents/${OTEL_AGENT}/directive`, { headers: { 'x-api-key': INGEST_KEY } });
          if (res.status === 200) this.contained = ['quarantined', 'pending_approval', 'healing', 'rejected', 'exhausted'].includes(((await res.json()) as { status: string }).status);
        }
        if (!this.contained) this.invocation();
        await sleep(80);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.provider.shutdown();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

// ───────────────────────────── the test ─────────────────────────────

beforeAll(async () => {
  // `immune run` is what `npm start` runs: the three real agents report beside its simulated fleet (with
  // chaos on), into the default embedded SQLite store.
  immune = await startImmune({
    args: ['run'],
    env: {
      INGEST_API_KEY: INGEST_KEY,
      OPERATOR_TOKEN,
      WEBHOOK_SECRET: SECRET,
      TICK_INTERVAL_SECONDS: '0.2',
      HEALING_STEP_DELAY_SECONDS: '2.5',
    },
  });
  fake = await startFakeOpenAI();
  // The operator: approves every severe case as it appears (the dashboard's Approve button calls the same endpoint).
  operatorLoop = setInterval(() => {
    void op('GET', '/api/v1/agents?status=pending_approval')
      .then(async (r: { agents: Array<{ id: string }> }) => {
        for (const a of r.agents) {
          const res = await op('POST', `/api/v1/agents/${a.id}/approve`, {});
          if (res.ok && AGENTS.includes(a.id)) approvals.push(a.id);
        }
      })
      .catch(() => undefined);
  }, 200);
});

afterAll(async () => {
  if (operatorLoop) clearInterval(operatorLoop);
  await fake?.close();
  await immune?.stop();
});

describe('agent integrations end to end against `immune run` (npm start)', () => {
  it('a Python SDK agent, an openai-helper agent and an OpenTelemetry agent are each quarantined, healed by their directive and released by probation', async () => {
    const rnd = seededRandom(5);
    // The fake model rambles at high temperature.
    fake.behave((params) => ({
      model: 'gpt-4o-mini-2024-07-18',
      prompt_tokens: Math.round(800 * rnd.logNormal(0.1)),
      completion_tokens: Math.round(380 * rnd.logNormal(0.1) * (Number(params.temperature ?? 1) > 1.5 ? 10 : 1)),
      tool_calls: [],
    }));
    const py = startPythonAgent();
    const ts = new OpenAIAgent(immune.url, fake.baseURL);
    const otel = new OtelAgent(immune.url);
    const controlUrl = await otel.listen();
    const reg = await fetch(`${immune.url}/api/v1/agents/register`, { method: 'POST', headers: { 'x-api-key': INGEST_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ agent_id: OTEL_AGENT, agent_type: 'Planner', control_url: controlUrl }) });
    expect(reg.status).toBe(200);

    // A live dashboard client: the SSE stream must carry every agent with its vitals.
    const sse = new AbortController();
    const live = new Map<string, unknown>();
    const stream = fetch(`${immune.url}/api/v1/stream`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` }, signal: sse.signal }).then(async (res) => {
      const reader = res.body!.getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += Buffer.from(value).toString('utf8');
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!msg.startsWith('event: agents')) continue;
          const data = msg.split('\n').find((l) => l.startsWith('data: '));
          for (const a of JSON.parse(data!.slice(6)) as Array<{ id: string; latest: unknown }>) if (a.latest) live.set(a.id, a.latest);
        }
      }
    }).catch(() => undefined);

    try {
      ts.start();
      otel.start();

      // 1. Each learns its baseline.
      const seen = () => ({ python: py.output().slice(-2000), ts: ts.directives, otel: otel.directives, approvals });
      await waitFor(async () => (await Promise.all(AGENTS.map(statusOf))).every((s) => s === 'healthy'), 'all three agents to be healthy', 40_000, seen);
      await until(() => AGENTS.every((id) => live.has(id)), 'every agent with live vitals on the SSE stream', 5000);

      // 2. A fault in each.
      py.send('fault');
      ts.temperature = 1.9;
      otel.looping = true;

      // 3. Quarantined (and approved by the operator), directive applied, probation passed.
      await waitFor(
        async () => {
          const h = await Promise.all(AGENTS.map(historyOf));
          return h.every((events) => events.some((e) => e.type === 'infection_detected') && events.some((e) => e.type === 'probation_passed'));
        },
        'each agent to be detected and healed',
        60_000,
        seen,
      );
      const final = await Promise.all(AGENTS.map(statusOf));
      if (final.some((st) => st !== 'healthy')) throw new Error(`not all healthy: ${final.join(', ')}\n${await story(seen())}`);
      const told = await story(seen());

      // Python: the directive came through the SDK, was applied by the agent's own cure and acknowledged.
      const pyDirectives = py.events.filter((e) => e.event === 'directive');
      expect(pyDirectives.at(-1), told).toMatchObject({ cured: true });
      expect(['reset_memory', 'reset_agent']).toContain(pyDirectives.at(-1)!.action);
      expect(py.events.some((e) => e.event === 'status' && ['quarantined', 'pending_approval', 'healing'].includes(e.status))).toBe(true);
      const pyHistory = await historyOf(PY_AGENT);
      expect(pyHistory.find((e) => e.type === 'action_applied' && e.detail === 'context cleared')?.actor).toBe('agent');

      // TypeScript + openai: the helper reported the runaway completions; the agent's cure bounded them.
      expect(ts.directives.at(-1), told).toMatchObject({ cured: true });
      const tsHistory = await historyOf(TS_AGENT);
      expect(tsHistory.find((e) => e.type === 'action_applied' && e.detail === 'generation bounded: temperature 0.3, max_tokens 1000')?.actor).toBe('agent');
      const tsDetail = await op('GET', `/api/v1/agents/${TS_AGENT}`);
      expect(tsDetail.agent.model).toBe('gpt-4o-mini-2024-07-18');
      expect(tsDetail.agent.latest.output_tokens).toBeLessThan(1000);

      // OpenTelemetry: healed through the signed control URL; the outcome the agent answered is in the audit log.
      expect(otel.directives.length).toBeGreaterThanOrEqual(1);
      expect(otel.directives.every((d) => d.signed)).toBe(true);
      expect(otel.directives.at(-1), told).toMatchObject({ cured: true });
      const otelHistory = await historyOf(OTEL_AGENT);
      expect(otelHistory.some((e) => e.type === 'action_applied' && e.detail === `${otel.directives.at(-1)!.action}: the looping tool is gone`)).toBe(true);

      // Severe faults waited for a human; the operator approved them.
      const infections = await Promise.all(AGENTS.map(async (id) => (await historyOf(id)).filter((e) => e.type === 'approval_requested').length));
      expect(approvals.length).toBe(infections.reduce((a, b) => a + b, 0));

      // 4. The dashboard's first paint shows all three with live vitals.
      const overview = await op('GET', '/api/v1/overview');
      for (const id of AGENTS) {
        const a = overview.agents.find((x: { id: string }) => x.id === id);
        expect(a, id).toBeDefined();
        expect(a.latest, id).not.toBeNull();
        expect(a.executions, id).toBeGreaterThan(15);
      }
    } finally {
      sse.abort();
      await stream;
      py.send('stop');
      await Promise.race([py.exited, sleep(10_000)]);
      if (py.child.exitCode === null) py.child.kill('SIGKILL');
      await ts.stop();
      await otel.stop();
    }
    expect(py.events.at(-1)).toMatchObject({ event: 'stopped' });
  }, 90_000);
});
