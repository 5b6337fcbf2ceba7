import { describe, expect, it } from 'vitest';
import type { GenAiSpan } from '../../../src/integrations/otlp/genai-span.js';
import { TraceAssembler, type AssemblerLimits, type AssembledUnit, type AssemblyOutput } from '../../../src/integrations/otlp/trace-assembler.js';
import { agent, chat, genAi, sid, tool, TRACE_A, TRACE_B, type Spec } from './span-fixtures.js';

const LIMITS: AssemblerLimits = { graceMs: 1000, parentWaitMs: 10_000, retainMs: 5000, maxTraces: 100, maxSpansPerTrace: 100, maxSpans: 1000 };

function make(limits: Partial<AssemblerLimits> = {}): TraceAssembler {
  return new TraceAssembler({ ...LIMITS, ...limits });
}

const add = (a: TraceAssembler, s: Spec, now: number) => a.addSpan(genAi(s), now);
const link = (a: TraceAssembler, id: number, parent: number | undefined, now: number, trace = TRACE_A) => a.addLink({ traceId: trace, spanId: sid(id), parentSpanId: parent === undefined ? '' : sid(parent) }, now);

/** A unit as "agent <id>: child ids" or "call <id>", for readable assertions. */
function describeUnit(u: AssembledUnit): string {
  const id = (s: GenAiSpan) => parseInt(s.spanId, 16);
  if (u.kind === 'model_call') return `call ${id(u.call)}`;
  return `agent ${id(u.agent)}: ${u.children.map(id).sort((x, y) => x - y).join(',')}`;
}
const units = (o: AssemblyOutput) => o.units.map(describeUnit);

describe('TraceAssembler: forming invocations', () => {
  it('folds children that arrived in earlier exports into their invocation, emitting when the grace period ends', () => {
    const a = make();
    add(a, chat(2, 1, 10, 1), 0);
    add(a, tool(3, 1, 'search'), 100);
    add(a, agent(1), 500);
    expect(units(a.flush(1499))).toEqual([]);
    expect(units(a.flush(1500))).toEqual(['agent 1: 2,3']);
    expect(units(a.flush(99_999))).toEqual([]);
  });

  it('folds a child that ends after its parent if it arrives within the grace period; counts it as late after that', () => {
    const a = make();
    add(a, agent(1), 0);
    add(a, chat(2, 1, 1, 1), 800);
    expect(units(a.flush(1000))).toEqual(['agent 1: 2']);
    add(a, chat(3, 1, 1, 1), 1200);
    const out = a.flush(2200);
    expect(units(out)).toEqual([]);
    expect(out.dropped.late_span).toBe(1);
  });

  it('emits a model call without an agent span as its own record after the grace period', () => {
    const a = make();
    add(a, chat(2, undefined, 1, 1), 0);
    expect(units(a.flush(999))).toEqual([]);
    expect(units(a.flush(1000))).toEqual(['call 2']);
  });

  it('does not emit the model call alone when its invoke_agent arrives meanwhile', () => {
    const a = make();
    add(a, chat(2, 1, 1, 1), 0);
    add(a, agent(1), 900);
    expect(units(a.flush(1000))).toEqual([]);
    expect(units(a.flush(1900))).toEqual(['agent 1: 2']);
  });

  it('traces ownership through non-GenAI spans in between', () => {
    const a = make();
    add(a, chat(3, 2, 1, 1), 0); // chat inside an HTTP span (2) inside the agent (1)
    link(a, 2, 1, 10);
    add(a, agent(1), 20);
    expect(units(a.flush(2000))).toEqual(['agent 1: 3']);
  });

  it('gives nested agents their own records; calls belong to the nearest agent', () => {
    const a = make();
    add(a, chat(3, 2, 1, 1), 0);
    add(a, tool(5, 2, 'lookup'), 0);
    add(a, agent(2, { start: 100, end: 600, attributes: { 'gen_ai.agent.id': 'inner' } }), 0);
    add(a, chat(4, 1, 1, 1), 0);
    add(a, agent(1, { parent: undefined }), 0);
    expect(units(a.flush(1000)).sort()).toEqual(['agent 1: 4', 'agent 2: 3,5']);
  });

  it('when the chain breaks at a span never seen, the innermost agent enclosing the call in time owns it', () => {
    const a = make();
    add(a, chat(3, 9, 1, 1, { start: 100, end: 200 }), 0); // parent 9 never arrives
    add(a, chat(4, 8, 1, 1, { start: 5000, end: 6000 }), 0); // outside every agent
    add(a, agent(1, { start: 0, end: 1000 }), 0);
    expect(units(a.flush(1000))).toEqual(['agent 1: 3']);
    // The other call's chain stays incomplete: it waits for its ancestors, then stands alone.
    expect(units(a.flush(9999))).toEqual([]);
    expect(units(a.flush(10_000))).toEqual(['call 4']);
  });

  it('holds the calls of a long-running agent until the agent ends, however many grace periods that takes', () => {
    const a = make();
    add(a, chat(2, 1, 5, 1, { start: 0, end: 100 }), 0);
    add(a, tool(3, 1, 'search', { start: 200, end: 300 }), 2_000);
    expect(units(a.flush(5_000))).toEqual([]);
    add(a, chat(4, 1, 5, 1, { start: 8_000, end: 8_100 }), 8_000);
    add(a, agent(1, { start: 0, end: 9_000 }), 9_000);
    expect(units(a.flush(10_000))).toEqual(['agent 1: 2,3,4']);
  });

  it('emits a waiting call soon after its chain completes at a root without an agent', () => {
    const a = make();
    add(a, chat(2, 5, 1, 1), 0); // inside a request span 5 that is still running
    expect(units(a.flush(1000))).toEqual([]);
    link(a, 5, undefined, 3000);
    expect(units(a.flush(3000))).toEqual(['call 2']);
  });

  it('a call whose chain reaches a root without an agent is not claimed by an enclosing agent of another branch', () => {
    const a = make();
    link(a, 5, undefined, 0, TRACE_A); // ignored: trace unknown yet
    add(a, agent(1, { parent: 5, start: 0, end: 1000 }), 0);
    link(a, 5, undefined, 0);
    add(a, chat(2, 5, 1, 1, { start: 10, end: 20 }), 0); // sibling of the agent under root 5
    expect(units(a.flush(1000)).sort()).toEqual(['agent 1: ', 'call 2']);
  });

  it('drops tool calls no agent owns, counted', () => {
    const a = make();
    add(a, tool(2, undefined, 'search'), 0);
    const out = a.flush(1000);
    expect(units(out)).toEqual([]);
    expect(out.dropped.tool_without_agent).toBe(1);
  });

  it('reports a re-sent span as a duplicate, also after its record was emitted', () => {
    const a = make();
    expect(add(a, agent(1), 0)).toBe('held');
    expect(add(a, agent(1), 10)).toBe('duplicate');
    expect(units(a.flush(1000))).toEqual(['agent 1: ']);
    expect(add(a, agent(1), 1100)).toBe('duplicate');
    expect(units(a.flush(5000))).toEqual([]);
  });

  it('keeps bare links only for traces that hold GenAI spans', () => {
    const a = make();
    expect(link(a, 7, undefined, 0, TRACE_B)).toBe('ignored');
    expect(a.traceCount).toBe(0);
    add(a, chat(2, 7, 1, 1), 0);
    expect(link(a, 7, undefined, 0)).toBe('held');
    expect(a.spanCount).toBe(2);
  });

  it('forgets a finished trace after retainMs of silence', () => {
    const a = make();
    add(a, agent(1), 0);
    a.flush(1000);
    expect(a.traceCount).toBe(1);
    a.flush(4999);
    expect(a.traceCount).toBe(1);
    a.flush(5000);
    expect([a.traceCount, a.spanCount]).toEqual([0, 0]);
  });

  it('flushAll emits everything held (shutdown)', () => {
    const a = make();
    add(a, chat(2, 1, 1, 1), 0);
    add(a, agent(1), 0);
    add(a, chat(3, undefined, 1, 1, { trace: TRACE_B }), 0);
    add(a, tool(4, undefined, 'x', { trace: TRACE_B }), 0);
    const out = a.flushAll(10);
    expect(units(out).sort()).toEqual(['agent 1: 2', 'call 3']);
    expect(out.dropped.evicted).toBe(1); // the tool was still waiting for its agent
    expect([a.traceCount, a.spanCount]).toEqual([0, 0]);
  });
});

describe('TraceAssembler: memory bounds', () => {
  const trace = (n: number) => `f${n.toString(16).padStart(31, '0')}`;

  it('at maxTraces, evicts the oldest pending trace early and counts it', () => {
    const a = make({ maxTraces: 2 });
    add(a, chat(1, undefined, 1, 1, { trace: trace(1) }), 0);
    add(a, agent(1, { trace: trace(2) }), 1);
    add(a, chat(1, undefined, 1, 1, { trace: trace(3) }), 2);
    expect(a.traceCount).toBe(2);
    const out = a.flush(2);
    expect(out.tracesEvicted).toBe(1);
    expect(units(out)).toEqual(['call 1']); // the evicted model call is complete in itself: emitted, not lost
    expect(out.units[0].kind === 'model_call' && out.units[0].call.traceId).toBe(trace(1));
  });

  it('prefers evicting finished traces, which costs nothing', () => {
    const a = make({ maxTraces: 2 });
    add(a, agent(1, { trace: trace(1) }), 0);
    a.flush(1000); // trace 1 finished, remembered
    add(a, chat(1, 5, 1, 1, { trace: trace(2) }), 1001);
    add(a, chat(1, 5, 1, 1, { trace: trace(3) }), 1002);
    const out = a.flush(1002);
    expect(out.tracesEvicted).toBe(0);
    expect(units(out)).toEqual([]);
    expect(a.traceCount).toBe(2);
  });

  it('a trace over maxSpansPerTrace is emitted with what it has and started afresh', () => {
    const a = make({ maxSpansPerTrace: 3, maxSpans: 10 });
    add(a, chat(2, 1, 1, 1), 0);
    add(a, tool(3, 1, 'x'), 0);
    add(a, agent(1), 0);
    add(a, chat(4, 1, 1, 1), 10); // the 4th span of the trace
    const early = a.flush(10);
    expect(early.tracesEvicted).toBe(1);
    expect(units(early)).toEqual(['agent 1: 2,3']);
    expect(a.spanCount).toBe(1);
    // The newcomer's agent was emitted already and is known no longer: its chain is incomplete, so it waits, then stands alone.
    expect(units(a.flush(1010))).toEqual([]);
    expect(units(a.flush(10_010))).toEqual(['call 4']);
  });

  it('at maxSpans, evicts the oldest other traces; a tool still waiting counts as evicted', () => {
    const a = make({ maxSpansPerTrace: 2, maxSpans: 3 });
    add(a, tool(1, 9, 'x', { trace: trace(1) }), 0);
    add(a, chat(2, 9, 1, 1, { trace: trace(1) }), 0);
    add(a, chat(1, 9, 1, 1, { trace: trace(2) }), 1);
    add(a, chat(2, 9, 1, 1, { trace: trace(2) }), 2);
    expect(a.spanCount).toBeLessThanOrEqual(3);
    const out = a.flush(2);
    expect(out.tracesEvicted).toBe(1);
    expect(out.dropped.evicted).toBe(1);
    expect(units(out)).toEqual(['call 2']);
  });

  it('never exceeds its caps and accounts for every span, under a random workload (seeded)', () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const limits = { graceMs: 50, parentWaitMs: 500, retainMs: 200, maxTraces: 20, maxSpansPerTrace: 12, maxSpans: 36 };
    const a = make(limits);
    let held = 0;
    let accounted = 0;
    const count = (o: AssemblyOutput) => {
      for (const u of o.units) accounted += u.kind === 'invocation' ? 1 + u.children.length : 1;
      accounted += o.dropped.late_span + o.dropped.tool_without_agent + o.dropped.evicted;
    };
    let now = 0;
    let maxTraces = 0;
    let maxSpans = 0;
    for (let i = 0; i < 6_000; i++) {
      now += Math.floor(rand() * 3);
      const t = trace(Math.floor(rand() * 60));
      const id = 1 + Math.floor(rand() * 30);
      const parent = rand() < 0.2 ? undefined : 1 + Math.floor(rand() * 30);
      const r = rand();
      const spec = r < 0.15 ? agent(id, { trace: t, parent }) : r < 0.6 ? chat(id, parent, 1, 1, { trace: t }) : r < 0.85 ? tool(id, parent, 'x', { trace: t }) : undefined;
      if (spec === undefined) link(a, id, parent, now, t);
      else if (add(a, spec, now) === 'held') held++;
      maxTraces = Math.max(maxTraces, a.traceCount);
      maxSpans = Math.max(maxSpans, a.spanCount);
      if (i % 100 === 0) count(a.flush(now));
    }
    // Both caps were reached, and held.
    expect(maxTraces).toBe(limits.maxTraces);
    expect(maxSpans).toBe(limits.maxSpans);
    count(a.flushAll(now));
    expect(accounted).toBe(held);
    expect([a.traceCount, a.spanCount]).toEqual([0, 0]);
  });

  it('refuses limits that cannot work', () => {
    expect(() => make({ maxSpans: 10, maxSpansPerTrace: 20 })).toThrow(/maxSpans ≥ maxSpansPerTrace/);
    expect(() => make({ graceMs: -1 })).toThrow(/graceMs/);
    expect(() => make({ maxTraces: 0 })).toThrow(/maxTraces/);
  });
});
