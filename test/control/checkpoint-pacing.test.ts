import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { checkpointPauseMs, ImmuneProduct, nextCheckpointMs } from '../../src/control/product.js';
import { silentLogger } from '../../src/log.js';
import { openPersistence } from '../../src/state/persistence.js';
import { capturingLogger } from '../support/log.js';
import { until } from '../support/scripted-http.js';
import { makeVitals } from '../support/vitals.js';

const dir = mkdtempSync(join(tmpdir(), 'immune-pacing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('detection-state checkpoint pacing', () => {
  it('pauses a periodic checkpoint 9× each slice’s own time: at most 10 % of the event loop while it runs', () => {
    for (const took of [0.5, 3, 40]) {
      const pause = checkpointPauseMs(took, { paced: true, stopping: false })!;
      expect(pause).toBeCloseTo(9 * took, 9);
      expect(took / (took + pause)).toBeCloseTo(0.1, 9);
    }
  });

  it('does not pause once the product is stopping, nor a checkpoint that is not paced (the one at shutdown)', () => {
    expect(checkpointPauseMs(3, { paced: true, stopping: true })).toBeNull();
    expect(checkpointPauseMs(3, { paced: false, stopping: false })).toBeNull();
  });

  it('backs off 50× the last checkpoint’s duration, never below the interval nor beyond 6× it', () => {
    const every = 10_000;
    expect(nextCheckpointMs(every, 0)).toBe(10_000);
    expect(nextCheckpointMs(every, 150)).toBe(10_000); // 7.5 s of back-off: the interval is longer
    expect(nextCheckpointMs(every, 300)).toBe(15_000);
    expect(nextCheckpointMs(every, 1_199)).toBe(59_950);
    expect(nextCheckpointMs(every, 1_200)).toBe(60_000);
    expect(nextCheckpointMs(every, 5_000)).toBe(60_000);
  });

  it('writes the same snapshot to the local file and to the SQLite store (built in shared memory, handed to the writer thread uncopied)', async () => {
    const own = mkdtempSync(join(dir, 'both-'));
    const config = parseConfig({ PORT: '0', HOST: '127.0.0.1', IMMUNE_CACHE_DIR: own, TICK_INTERVAL_SECONDS: '60' });
    const product = await ImmuneProduct.create({ config, log: silentLogger(), agents: 0, durationSeconds: 0, chaos: null, seed: 1 });
    const agents = Array.from({ length: 1000 }, (_, a) => makeVitals(`agent-${a}`, a));
    for (let k = 0; k < 3; k++) agents.forEach((next) => product.cp.observe(next()));
    await product.checkpoint();
    await product.stop();
    const ids = agents.map((_, a) => `agent-${a}`).sort();
    const local = await openPersistence(config, silentLogger());
    try {
      expect(local.snapshotSource).toBe('local');
      expect(local.snapshot!.agents.map((a) => a.id).sort()).toEqual(ids);
    } finally {
      await local.close();
    }
    rmSync(join(own, 'state.json'));
    rmSync(join(own, 'snapshot.json'));
    const fromStore = await openPersistence(config, silentLogger());
    try {
      expect(fromStore.snapshotSource).toBe('store');
      expect(JSON.stringify(fromStore.snapshot)).toBe(JSON.stringify(local.snapshot));
    } finally {
      await fromStore.close();
    }
  });

  it('paces the product’s periodic checkpoint, schedules the next from its wall time, and finishes at full speed once stopping', async () => {
    const { log, lines } = capturingLogger();
    const config = parseConfig({ PORT: '0', HOST: '127.0.0.1', IMMUNE_CACHE_DIR: dir, TICK_INTERVAL_SECONDS: '60' });
    const every = 1000;
    const product = await ImmuneProduct.create({ config, log, agents: 0, durationSeconds: 0, chaos: null, seed: 1, checkpointSeconds: every / 1000 });
    try {
      // 1,000 agents: 10 slices.
      const agents = Array.from({ length: 1000 }, (_, a) => makeVitals(`agent-${a}`, a));
      const observeAll = () => agents.forEach((next) => product.cp.observe(next()));
      for (let k = 0; k < 3; k++) observeAll();
      await product.start();
      const checkpointed = () => lines.find((l) => l.msg === 'detection state checkpointed') as { took_ms: number; busy_ms: number; next_in_ms: number } | undefined;
      await until(() => checkpointed() !== undefined, 'the first periodic checkpoint');
      const { took_ms, busy_ms, next_in_ms } = checkpointed()!;
      // Paced: ~10× its event-loop time (the last piece and the writes are not followed by a pause).
      expect(took_ms).toBeGreaterThanOrEqual(5 * busy_ms);
      // From the wall time, not the event-loop time (took_ms is rounded: 50× it is off by up to 25 ms).
      expect(Math.abs(next_in_ms - nextCheckpointMs(every, took_ms))).toBeLessThanOrEqual(25);
      expect(next_in_ms).toBeLessThanOrEqual(6 * every);

      // A paced checkpoint that stop() finds running goes on at full speed. With performance.now() running 100× fast,
      // each of its ten slices seems 100× as long as it is: paced, they would be followed by tens of seconds of pauses.
      observeAll();
      const now = performance.now.bind(performance);
      vi.spyOn(performance, 'now').mockImplementation(() => now() * 100);
      let late: NodeJS.Timeout | undefined;
      try {
        const checkpoint = product.checkpoint({ paced: true });
        const stopped = Promise.all([checkpoint, product.stop()]).then(() => 'stopped');
        expect(await Promise.race([stopped, new Promise((r) => (late = setTimeout(r, 5000, 'still pausing after 5 s')))])).toBe('stopped');
      } finally {
        clearTimeout(late);
        vi.restoreAllMocks();
      }
    } finally {
      await product.stop(); // a second stop() does nothing
    }
  });

  it('logs a periodic checkpoint only when it saved something', async () => {
    const { log, lines } = capturingLogger();
    const config = parseConfig({ PORT: '0', HOST: '127.0.0.1', IMMUNE_CACHE_DIR: mkdtempSync(join(dir, 'quiet-')), TICK_INTERVAL_SECONDS: '60' });
    const product = await ImmuneProduct.create({ config, log, agents: 0, durationSeconds: 0, chaos: null, seed: 1, checkpointSeconds: 0.2 });
    try {
      const next = makeVitals('agent-quiet', 1);
      product.cp.observe(next());
      await product.start();
      const saved = () => lines.filter((l) => l.msg === 'detection state checkpointed').length;
      await until(() => saved() === 1, 'the first periodic checkpoint');
      // Nothing new: the next ones are skipped, and say nothing.
      await new Promise((r) => setTimeout(r, 1500));
      expect(saved()).toBe(1);
      product.cp.observe(next());
      await until(() => saved() === 2, 'a checkpoint after a new sample');
    } finally {
      await product.stop();
    }
  });
});
