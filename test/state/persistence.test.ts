import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import type { ImmuneEvent } from '../../src/domain/events.js';
import { ImmuneEngine } from '../../src/engine/engine.js';
import { isReady } from '../../src/engine/baseline.js';
import { silentLogger } from '../../src/log.js';
import { encodedSnapshot, openPersistence, resolveKeys } from '../../src/state/persistence.js';
import { MemoryStore } from '../../src/store/memory.js';
import { vitals } from '../store/contract.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'immune-persist-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const cfg = (env: Record<string, string> = {}) => parseConfig({ IMMUNE_CACHE_DIR: dir, ...env });

/** Runs a real engine over a few agents until baselines are ready and one is sick, persisting what a control plane persists. */
async function firstLife(): Promise<{ runId: string; engine: ImmuneEngine; keys: string }> {
  const p = await openPersistence(cfg(), silentLogger());
  const engine = new ImmuneEngine({ healingStepDelaySeconds: 0 });
  const out: ImmuneEvent[] = [];
  for (let i = 0; i < 20; i++) for (const a of ['a', 'b', 'c']) out.push(...engine.observe(vitals(a, 1000 + i, { latency_ms: 1000 + (i % 5) * 10 })).events);
  for (let k = 0; k < 4; k++) out.push(...engine.observe(vitals('c', 1100 + k, { latency_ms: 30_000, input_tokens: 90_000, token_count: 90_301, tool_calls: 40 })).events);
  await p.store.appendEvents(p.runId, out);
  await p.checkpoint(engine.snapshot());
  await p.close();
  return { runId: p.runId, engine, keys: p.keys.ingest_api_key };
}

describe('encodedSnapshot', () => {
  it('gives a store that keeps objects the same snapshot as the bytes hold', async () => {
    const { engine } = await firstLife();
    const snap = engine.snapshot();
    const store = new MemoryStore();
    await store.saveSnapshot('r', encodedSnapshot(snap.seq, Buffer.from(JSON.stringify(snap))));
    expect(await store.loadSnapshot('r')).toEqual(JSON.parse(JSON.stringify(snap)));
  });
});

describe('openPersistence (restart resilience)', () => {
  it('comes back to the same run, keys, workflow state and ready baselines after a restart', async () => {
    const before = await firstLife();
    expect(before.engine.get('c')!.wf.state).not.toBe('healthy');

    const p = await openPersistence(cfg(), silentLogger());
    try {
      expect(p).toMatchObject({ runId: before.runId, runIdSource: 'local', snapshotSource: 'local', warnings: [] });
      expect(p.keys.ingest_api_key).toBe(before.keys);
      expect(p.keys.source.ingest_api_key).toBe('local-state');
      const engine = new ImmuneEngine({ healingStepDelaySeconds: 0 });
      engine.restore(p.events, p.snapshot ?? undefined);
      for (const id of ['a', 'b', 'c']) expect(engine.get(id)!.wf.state).toBe(before.engine.get(id)!.wf.state);
      expect(isReady(engine.get('a')!.baseline, engine.cfg)).toBe(true);
      // No warm-up: the next anomalous sample of a healthy agent is judged at once.
      let caught = false;
      for (let k = 0; k < 4 && !caught; k++) caught = engine.observe(vitals('a', 1200 + k, { latency_ms: 40_000, input_tokens: 90_000, token_count: 90_301, tool_calls: 40 })).events.some((e) => e.type === 'infection_detected');
      expect(caught).toBe(true);
    } finally {
      await p.close();
    }
  });

  it('continues the store\'s latest run with its baselines when the local state is lost', async () => {
    const before = await firstLife();
    rmSync(join(dir, 'state.json'));
    rmSync(join(dir, 'snapshot.json'));
    const p = await openPersistence(cfg(), silentLogger());
    try {
      expect(p).toMatchObject({ runId: before.runId, runIdSource: 'store', snapshotSource: 'store' });
      expect(p.snapshot!.agents.map((a) => a.id).sort()).toEqual(['a', 'b', 'c']);
      expect(p.keys.source.ingest_api_key).toBe('generated'); // generated keys lived only in the lost state
    } finally {
      await p.close();
    }
  });

  it('starts a fresh run with --new-run and keeps the old one in the store', async () => {
    const before = await firstLife();
    const p = await openPersistence(cfg(), silentLogger(), { newRun: true });
    try {
      expect(p.runId).not.toBe(before.runId);
      expect(p).toMatchObject({ runIdSource: 'new-run', events: [], snapshot: null, snapshotSource: 'none' });
      expect((await p.store.readEvents(before.runId)).length).toBeGreaterThan(0);
      expect(await p.store.latestRun()).toBe(p.runId);
    } finally {
      await p.close();
    }
    const again = await openPersistence(cfg(), silentLogger());
    expect(again.runId).not.toBe(before.runId); // the new run survives the next restart
    await again.close();
  });

  it('starts anyway with a corrupt local state file, saying so', async () => {
    await firstLife();
    writeFileSync(join(dir, 'state.json'), '{ not json', { mode: 0o600 });
    const p = await openPersistence(cfg(), silentLogger());
    try {
      expect(p.warnings.join('\n')).toMatch(/state\.json is corrupt/);
      expect(p.runIdSource).toBe('store');
    } finally {
      await p.close();
    }
  });

  it('prefers keys from the environment and never persists them', () => {
    const k = resolveKeys({ ingestApiKey: 'from-env', operatorToken: '', webhookSecret: '' }, { operator_token: 'saved' });
    expect(k).toMatchObject({ ingest_api_key: 'from-env', operator_token: 'saved', source: { ingest_api_key: 'env', operator_token: 'local-state', webhook_secret: 'generated' } });
    expect(k.webhook_secret).toMatch(/^whs-[A-Za-z0-9_-]{43}$/);
  });
});
