import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImmuneEvent } from '../../src/domain/events.js';
import type { Vitals } from '../../src/domain/vitals.js';
import type { EngineSnapshot } from '../../src/engine/engine.js';
import type { SeedRecord, Store } from '../../src/store/store.js';

/**
 * One contract every Store adapter passes (DESIGN §2, STYLE: Hono's
 * router contract suite). Each adapter's test file calls runStoreContract
 * with a factory that opens a fresh, empty store on a real backend.
 */
export interface ContractTarget {
  /** A fresh, opened, empty store. */
  open(): Promise<Store>;
  /** The same backend opened again after close() (durable adapters only). */
  reopen?: (closed: Store) => Promise<Store>;
  /** Stops whatever open() started. */
  cleanup?: () => Promise<void>;
}

const T0 = 1_700_000_000;

/** Small deterministic PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function vitals(agentId: string, ts: number, over: Partial<Vitals> = {}): Vitals {
  return {
    agent_id: agentId,
    agent_type: 'Research',
    timestamp: ts,
    latency_ms: 1234.567,
    input_tokens: 812,
    output_tokens: 301,
    token_count: 1113,
    cost: 0.012345678,
    tool_calls: 3,
    retries: 1,
    success: true,
    model: 'gpt-4o',
    provider: 'openai',
    error_type: '',
    prompt_hash: 'p-abc123',
    mcp_servers: ['fs', 'web'],
    tool_names: ['search', 'read_file'],
    ...over,
  };
}

function randomVitals(r: () => number, agentId: string, ts: number): Vitals {
  const inTok = Math.floor(r() * 5000);
  const outTok = Math.floor(r() * 2000);
  return vitals(agentId, ts, {
    latency_ms: r() * 10000,
    input_tokens: inTok,
    output_tokens: outTok,
    token_count: inTok + outTok,
    cost: r() / 7,
    tool_calls: Math.floor(r() * 20),
    retries: Math.floor(r() * 3),
    success: r() > 0.2,
    error_type: r() > 0.8 ? 'timeout' : '',
    mcp_servers: r() > 0.5 ? [] : ['mcp-a'],
    tool_names: r() > 0.5 ? [] : ['t1', 't2', 't3'],
  });
}

let seqCounter = 0;
function ev(agentId: string, ts: number, body: Record<string, unknown> & { type: ImmuneEvent['type'] }, seq = ++seqCounter): ImmuneEvent {
  return { seq, ts, agent_id: agentId, actor: 'system', reason: `why ${seq}`, ...body } as ImmuneEvent;
}

function infectionEvent(agentId: string, ts: number, seq?: number): ImmuneEvent {
  return ev(
    agentId,
    ts,
    {
      type: 'infection_detected',
      infection: { agent_id: agentId, timestamp: ts, max_deviation: 7.25, anomalies: ['token_spike', 'cost_spike'], deviations: { tokens: 7.25, cost: 4.5 }, severity: 'severe', evidence_samples: 3 },
      diagnosis: { agent_id: agentId, hypotheses: [{ diagnosis: 'prompt_injection', confidence: 0.8, reasoning: 'tokens "up", cost\\up' }] },
    },
    seq,
  );
}

export function snapshot(agents: number, seq: number, salt = 0): EngineSnapshot {
  const r = rng(99 + salt);
  return {
    seq,
    agents: Array.from({ length: agents }, (_, i) => ({
      id: `agent-${i}`,
      baseline: {
        n: 40 + i,
        mean: Array.from({ length: 6 }, () => r() * 10),
        variance: Array.from({ length: 6 }, () => r()),
        p95: Array.from({ length: 6 }, () => r() * 12),
        linear: Array.from({ length: 6 }, () => r() * 1e4),
        rate: [r(), r() / 3],
        prompt_hash: `p${i}`,
        model: 'gpt-4o',
        provider: 'openai',
      },
      sentinel: { cusum: [0.1 + r(), 0, 0, 0, 0, 0], run: [0, 1, 0, 0, 0, 0], tail: Array.from({ length: 8 }, () => r()), z: [r(), 0, 0, 0, 0, 0], counts: [0, 1], pos: 3, ratePos: 2, candidatePrompt: '', candidateRun: 0 },
      executions: 100 + i,
      last_seen: T0 + i + r(),
    })),
  };
}

export function runStoreContract(name: string, target: ContractTarget): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let n = 0;
    // Every test writes to its own run, so tests are independent on a shared backend.
    const run = (label: string) => `run-${label}-${++n}`;

    beforeAll(async () => {
      store = await target.open();
    });
    afterAll(async () => {
      await store?.close();
      await target.cleanup?.();
    });

    it('reports itself healthy', async () => {
      const h = await store.health();
      expect(h.ok).toBe(true);
      expect(h.kind).toBe(store.kind);
    });

    it('returns vitals exactly as written, oldest first', async () => {
      const r = rng(1);
      const id = run('vitals');
      const batch = [5, 1, 3, 2, 4].map((k) => randomVitals(r, 'a1', T0 + k + r() / 3));
      const odd = vitals('a1', T0 + 6.000001, { model: 'gpt "4o", x=1\\ny \n z', agent_type: 'Research Bot, v2', error_type: "it's=bad", prompt_hash: 'ü ✓', mcp_servers: ['a b', 'c,d'], tool_names: [] });
      await store.appendVitals(id, [...batch, odd]);
      const got = await store.recentVitals(id, 'a1', {});
      expect(got).toEqual([...batch].sort((a, b) => a.timestamp - b.timestamp).concat([odd]));
    });

    it('answers recent vitals by window (relative to now) and by limit (the newest, oldest first)', async () => {
      const id = run('window');
      await store.appendVitals(id, Array.from({ length: 20 }, (_, i) => vitals('w', T0 + i)));
      await store.appendVitals(id, [vitals('other', T0 + 19)]);
      const inWindow = await store.recentVitals(id, 'w', { windowSeconds: 5, now: T0 + 19 });
      expect(inWindow.map((v) => v.timestamp)).toEqual([14, 15, 16, 17, 18, 19].map((k) => T0 + k));
      const newest = await store.recentVitals(id, 'w', { limit: 3 });
      expect(newest.map((v) => v.timestamp)).toEqual([17, 18, 19].map((k) => T0 + k));
      const both = await store.recentVitals(id, 'w', { windowSeconds: 10, limit: 2, now: T0 + 12 });
      expect(both.map((v) => v.timestamp)).toEqual([T0 + 18, T0 + 19]);
      expect(await store.recentVitals(id, 'w', { windowSeconds: 10, now: T0 + 100 })).toEqual([]);
      // A window reaching back before 1970 is how callers ask for "the newest N, however old".
      expect((await store.recentVitals(id, 'w', { windowSeconds: 1e12, limit: 2 })).map((v) => v.timestamp)).toEqual([T0 + 18, T0 + 19]);
      expect(await store.recentVitals(id, 'nobody', {})).toEqual([]);
    });

    it('keeps two samples of one agent with the same timestamp', async () => {
      const id = run('same-ts');
      await store.appendVitals(id, [vitals('s', T0, { latency_ms: 1 }), vitals('s', T0, { latency_ms: 2 })]);
      await store.appendVitals(id, [vitals('s', T0, { latency_ms: 3 })]);
      expect(await store.vitalsCount(id, 's')).toBe(3);
      expect((await store.recentVitals(id, 's', {})).map((v) => v.latency_ms).sort()).toEqual([1, 2, 3]);
    });

    it('gives the newest sample of every agent and counts per agent and per run', async () => {
      const id = run('latest');
      await store.appendVitals(id, [vitals('x', T0 + 1), vitals('y', T0 + 5, { model: 'm1' }), vitals('x', T0 + 9, { latency_ms: 9 }), vitals('y', T0 + 2)]);
      await store.appendVitals(id, [vitals('y', T0 + 7, { model: 'm2', latency_ms: 7 })]);
      const latest = (await store.latestVitals(id)).sort((a, b) => a.agent_id.localeCompare(b.agent_id));
      expect(latest.map((v) => [v.agent_id, v.timestamp, v.latency_ms])).toEqual([
        ['x', T0 + 9, 9],
        ['y', T0 + 7, 7],
      ]);
      expect(await store.vitalsCount(id)).toBe(5);
      expect(await store.vitalsCount(id, 'y')).toBe(3);
      expect(await store.vitalsCount(id, 'z')).toBe(0);
      expect(await store.latestVitals(run('empty'))).toEqual([]);
    });

    it('isolates runs: nothing written in one run is visible in another', async () => {
      const a = run('iso-a');
      const b = run('iso-b');
      await store.appendVitals(a, [vitals('shared', T0)]);
      await store.appendEvents(a, [infectionEvent('shared', T0, 1)]);
      await store.saveSnapshot(a, snapshot(2, 1));
      await store.upsertAgent(a, { agent_id: 'shared', meta: { agent_type: 't', model: 'm', provider: 'p', mcp_servers: [], source: 'external' } });
      await store.appendRecords(a, [{ measurement: 'approval_event', agent_id: 'shared', ts: T0, fields: { decision: 'pending' } }]);
      expect(await store.recentVitals(b, 'shared', {})).toEqual([]);
      expect(await store.vitalsCount(b)).toBe(0);
      expect(await store.readEvents(b)).toEqual([]);
      expect(await store.loadSnapshot(b)).toBeNull();
      expect(await store.agents(b)).toEqual([]);
      expect(await store.readRecords(b, { measurement: 'approval_event' })).toEqual([]);
    });

    it('returns events exactly as written and filters them by seq, agent, type, time, order and limit', async () => {
      const id = run('events');
      const es: ImmuneEvent[] = [
        ev('a', T0 + 1, { type: 'agent_registered', meta: { agent_type: 'Research', model: 'gpt-4o', provider: 'openai', mcp_servers: ['fs'], control_url: 'http://127.0.0.1:9/x', source: 'external' } }, 1),
        ev('a', T0 + 2, { type: 'baseline_ready' }, 2),
        infectionEvent('a', T0 + 3, 3),
        ev('a', T0 + 3, { type: 'approval_requested' }, 4),
        ev('b', T0 + 3, { type: 'agent_registered', meta: { agent_type: 'Coder', model: '', provider: '', mcp_servers: [], source: 'simulated' } }, 5),
        ev('a', T0 + 4, { type: 'rejected', actor: 'operator:ann' }, 6),
        ev('fleet:model:gpt-4o', T0 + 5, { type: 'fleet_incident_started', incident: { id: 'inc-1', group: 'model:gpt-4o', started_at: T0 + 5, agents: ['a', 'b'], anomalies: ['latency_spike'], max_deviation: 3.5 } }, 7),
      ];
      await store.appendEvents(id, es.slice(0, 4));
      await store.appendEvents(id, es.slice(4));
      expect(await store.readEvents(id)).toEqual(es);
      expect((await store.readEvents(id, { afterSeq: 4 })).map((e) => e.seq)).toEqual([5, 6, 7]);
      expect((await store.readEvents(id, { beforeSeq: 3 })).map((e) => e.seq)).toEqual([1, 2]);
      expect((await store.readEvents(id, { agentId: 'a' })).map((e) => e.seq)).toEqual([1, 2, 3, 4, 6]);
      expect((await store.readEvents(id, { types: ['agent_registered', 'rejected'] })).map((e) => e.seq)).toEqual([1, 5, 6]);
      expect((await store.readEvents(id, { sinceTs: T0 + 3, untilTs: T0 + 4 })).map((e) => e.seq)).toEqual([3, 4, 5, 6]);
      expect((await store.readEvents(id, { order: 'desc', limit: 2 })).map((e) => e.seq)).toEqual([7, 6]);
      expect((await store.readEvents(id, { limit: 2 })).map((e) => e.seq)).toEqual([1, 2]);
      expect((await store.readEvents(id, { agentId: 'a', beforeSeq: 6, order: 'desc', limit: 2 })).map((e) => e.seq)).toEqual([4, 3]);
    });

    it('stores an event once when a batch is re-sent after a retry', async () => {
      const id = run('resend');
      const es = [ev('a', T0, { type: 'baseline_ready' }, 1), ev('a', T0 + 1, { type: 'quarantined' }, 2)];
      await store.appendEvents(id, es);
      await store.appendEvents(id, es);
      await store.appendEvents(id, [ev('a', T0 + 2, { type: 'released' }, 3)]);
      expect((await store.readEvents(id)).map((e) => e.seq)).toEqual([1, 2, 3]);
    });

    it('keeps many events in seq order across batches', async () => {
      const id = run('many-events');
      const es = Array.from({ length: 1500 }, (_, i) => ev(`a${i % 7}`, T0 + Math.floor(i / 10), { type: 'baseline_ready' }, i + 1));
      for (let i = 0; i < es.length; i += 500) await store.appendEvents(id, es.slice(i, i + 500));
      const back = await store.readEvents(id);
      expect(back.length).toBe(1500);
      expect(back.every((e, i) => e.seq === i + 1)).toBe(true);
      expect((await store.readEvents(id, { afterSeq: 1490 })).length).toBe(10);
    });

    it('replaces the snapshot and returns it bit for bit', async () => {
      const id = run('snap');
      expect(await store.loadSnapshot(id)).toBeNull();
      await store.saveSnapshot(id, snapshot(300, 10));
      const second = snapshot(200, 20, 1);
      await store.saveSnapshot(id, second);
      expect(await store.loadSnapshot(id)).toEqual(second);
      // With the JSON bytes the caller already made (checkpoints encode once for the local copy and the store).
      const third = snapshot(10, 30, 2);
      await store.saveSnapshot(id, third, Buffer.from(JSON.stringify(third)));
      expect(await store.loadSnapshot(id)).toEqual(third);
    });

    it('upserts registered agents', async () => {
      const id = run('agents');
      const meta = { agent_type: 'Research', model: 'gpt-4o', provider: 'openai', mcp_servers: ['fs'], source: 'external' as const };
      await store.upsertAgent(id, { agent_id: 'a', meta });
      await store.upsertAgent(id, { agent_id: 'b', meta: { ...meta, agent_type: 'Coder' } });
      await store.upsertAgent(id, { agent_id: 'a', meta: { ...meta, control_url: 'http://127.0.0.1:7000/control', model: 'o3' } });
      const got = (await store.agents(id)).sort((x, y) => x.agent_id.localeCompare(y.agent_id));
      expect(got).toEqual([
        { agent_id: 'a', meta: { ...meta, control_url: 'http://127.0.0.1:7000/control', model: 'o3' } },
        { agent_id: 'b', meta: { ...meta, agent_type: 'Coder' } },
      ]);
    });

    it('keeps seed-shaped records per measurement, oldest first, newest N with a limit', async () => {
      const id = run('records');
      const recs: SeedRecord[] = [
        { measurement: 'approval_event', agent_id: 'a', ts: T0 + 2, fields: { decision: 'pending', severity: 6.5, anomalies: ['token_spike'], diagnosis_type: 'prompt_injection', reasoning: "it's \"odd\"" } },
        { measurement: 'approval_event', agent_id: 'b', ts: T0 + 1, fields: { decision: 'rejected' } },
        { measurement: 'healing_event', agent_id: 'a', ts: T0 + 3, fields: { diagnosis_type: 'prompt_injection', healing_action: 'reset_memory', success: true, validation_passed: false } },
        { measurement: 'approval_event', agent_id: 'a', ts: T0 + 4, fields: { decision: 'approved' } },
      ];
      await store.appendRecords(id, recs);
      expect(await store.readRecords(id, { measurement: 'approval_event' })).toEqual([recs[1], recs[0], recs[3]]);
      expect(await store.readRecords(id, { measurement: 'approval_event', agentId: 'a' })).toEqual([recs[0], recs[3]]);
      expect(await store.readRecords(id, { measurement: 'approval_event', limit: 1 })).toEqual([recs[3]]);
      expect(await store.readRecords(id, { measurement: 'healing_event' })).toEqual([recs[2]]);
      expect(await store.readRecords(id, { measurement: 'action_log' })).toEqual([]);
    });

    it('names the most recently active run', async () => {
      const a = run('latest-a');
      const b = run('latest-b');
      await store.appendVitals(a, [vitals('a', T0)]);
      await store.registerRun(b);
      expect(await store.latestRun()).toBe(b);
      await store.appendEvents(a, [ev('a', T0, { type: 'baseline_ready' }, 1)]);
      expect(await store.latestRun()).toBe(a);
    });

    it('prunes old vitals in every run and keeps the events', async () => {
      const a = run('prune-a');
      const b = run('prune-b');
      // Far in the past so other tests' vitals (at T0) are not in the way of the count.
      const old = 1_000_000_000;
      await store.appendVitals(a, [vitals('p', old), vitals('p', old + 1), vitals('p', old + 100)]);
      await store.appendVitals(b, [vitals('q', old + 2), vitals('q', old + 200)]);
      await store.appendEvents(a, [ev('p', old, { type: 'baseline_ready' }, 1)]);
      expect(await store.pruneVitals(old + 50)).toBe(3);
      expect((await store.recentVitals(a, 'p', {})).map((v) => v.timestamp)).toEqual([old + 100]);
      expect((await store.recentVitals(b, 'q', {})).map((v) => v.timestamp)).toEqual([old + 200]);
      expect(await store.readEvents(a)).toHaveLength(1);
      expect(await store.pruneVitals(old + 50)).toBe(0);
    });

    it.skipIf(!target.reopen)('keeps everything across close and reopen', async () => {
      const id = run('durable');
      const snap = snapshot(50, 5);
      const es = [infectionEvent('d', T0 + 1, 1), ev('d', T0 + 2, { type: 'approval_requested' }, 2)];
      await store.appendVitals(id, [vitals('d', T0), vitals('d', T0 + 1)]);
      await store.appendEvents(id, es);
      await store.saveSnapshot(id, snap);
      await store.upsertAgent(id, { agent_id: 'd', meta: { agent_type: 't', model: 'm', provider: '', mcp_servers: [], source: 'external' } });
      await store.close();
      await store.close(); // safe twice
      store = await target.reopen!(store);
      expect(await store.vitalsCount(id, 'd')).toBe(2);
      expect(await store.readEvents(id)).toEqual(es);
      expect(await store.loadSnapshot(id)).toEqual(snap);
      expect(await store.agents(id)).toHaveLength(1);
      expect(await store.latestRun()).toBe(id);
    });
  });
}
