import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WriteBehind } from '../../src/control/write-behind.js';
import type { Vitals } from '../../src/domain/vitals.js';
import { silentLogger } from '../../src/log.js';
import { MemoryStore } from '../../src/store/memory.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { vitals } from '../store/contract.js';

/** A memory store whose next `failures` vitals writes fail (an injected fault: a real disk cannot be made to fail on cue here). */
class FlakyStore extends MemoryStore {
  writes = 0;
  constructor(private failures: number) {
    super();
  }
  override async appendVitals(runId: string, batch: readonly Vitals[]): Promise<void> {
    this.writes += 1;
    if (this.failures-- > 0) throw new Error('disk on fire');
    return super.appendVitals(runId, batch);
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('WriteBehind', () => {
  it('answers concurrent callers once their data is in the real database, in one shared write', async () => {
    const d = mkdtempSync(join(tmpdir(), 'immune-wb-'));
    dirs.push(d);
    const store = new SqliteStore({ path: join(d, 'immune.sqlite') });
    await store.open();
    const wb = new WriteBehind(store, 'run', silentLogger());
    try {
      const acks = Array.from({ length: 50 }, (_, i) => {
        wb.vitals(vitals(`a${i}`, 1000 + i));
        return wb.durable();
      });
      // Every caller of one turn gets the same promise: one batch, one write.
      expect(new Set(acks).size).toBe(1);
      await Promise.all(acks);
      expect(await store.vitalsCount('run')).toBe(50);
      expect(wb.stats()).toEqual({ queued: 0, dropped: 0, failures: 0 });
    } finally {
      await wb.close();
      await store.close();
    }
  });

  it('rejects everyone in a failed write, keeps their data, and stores it exactly once on the next write', async () => {
    const store = new FlakyStore(1);
    const wb = new WriteBehind(store, 'run', silentLogger());
    wb.vitals(vitals('a', 1));
    const first = wb.durable();
    wb.vitals(vitals('b', 2));
    const second = wb.durable();
    await expect(first).rejects.toThrow('disk on fire');
    await expect(second).rejects.toThrow('disk on fire');
    expect(wb.stats()).toMatchObject({ queued: 2, failures: 1 });

    wb.vitals(vitals('c', 3));
    await wb.durable();
    expect((await store.recentVitals('run', 'a', {})).length + (await store.recentVitals('run', 'b', {})).length + (await store.recentVitals('run', 'c', {})).length).toBe(3);
    expect(store.writes).toBe(2);
    await wb.close();
  });

  it('does not acknowledge data whose write is in flight until that write succeeds', async () => {
    // A slow failing store: the timer's write takes the data off the queue, then fails.
    class SlowFlaky extends FlakyStore {
      started = 0;
      override async appendVitals(runId: string, batch: readonly Vitals[]): Promise<void> {
        this.started += 1;
        await new Promise((r) => setTimeout(r, 50));
        return super.appendVitals(runId, batch);
      }
    }
    const store = new SlowFlaky(1);
    const wb = new WriteBehind(store, 'run', silentLogger());
    wb.vitals(vitals('a', 1));
    // Wait until the 25 ms timer has started the write: the data is off the queue, in flight.
    while (store.started === 0) await new Promise((r) => setTimeout(r, 5));
    expect(wb.stats().queued).toBe(0);
    await wb.durable();
    // Acknowledged only by the retry that stored it, not by the failed write it was in.
    expect(await store.recentVitals('run', 'a', {})).toHaveLength(1);
    expect(store.writes).toBe(2);
    await wb.close();
  });

  it('sends the next batch while the first is unacknowledged, never more than two at a time, and acknowledges each batch once it is stored', async () => {
    class Slow extends FlakyStore {
      running = 0;
      most = 0;
      override async appendVitals(runId: string, batch: readonly Vitals[]): Promise<void> {
        this.running += 1;
        this.most = Math.max(this.most, this.running);
        await new Promise((r) => setTimeout(r, 60));
        this.running -= 1;
        return super.appendVitals(runId, batch);
      }
    }
    const store = new Slow(0);
    const wb = new WriteBehind(store, 'run', silentLogger());
    const stored = async (id: string) => (await store.recentVitals('run', id, {})).length;
    wb.vitals(vitals('a', 1));
    const a = wb.durable();
    while (store.running === 0) await new Promise((r) => setTimeout(r, 2));
    wb.vitals(vitals('b', 2));
    const b = wb.durable();
    // b's write goes out while a's is still running (waited for up to 1 s)
    for (let t = 0; store.running < 2 && t < 500; t++) await new Promise((r) => setTimeout(r, 2));
    expect(store.running).toBe(2);
    wb.vitals(vitals('c', 3));
    const c = wb.durable();
    await a;
    expect(await stored('a')).toBe(1);
    await b;
    expect(await stored('b')).toBe(1);
    await c;
    expect(await stored('c')).toBe(1);
    expect(store.most).toBe(2);
    expect(store.writes).toBe(3);
    await wb.close();
  });

  it('resolves at once when nothing is queued and nothing is being written', async () => {
    const store = new FlakyStore(0);
    const wb = new WriteBehind(store, 'run', silentLogger());
    await wb.durable();
    expect(store.writes).toBe(0);
    await wb.close();
  });
});
