import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isImmuneError } from '../domain/errors.js';
import type { ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import type { EngineSnapshot } from '../engine/engine.js';
import type { Logger } from '../log.js';
import { filterEvents } from './event-query.js';
import { recordsIn, SpillFile, type SpillOp } from './spill.js';
import type { EventQuery, QueueStats, RegisteredAgent, SeedMeasurement, SeedRecord, Store, StoreHealth } from './store.js';

export interface ResilientOptions {
  /** Directory for the spill file (under IMMUNE_CACHE_DIR). */
  spillDir: string;
  /** STORE_QUEUE_MAX: records held while the store is unreachable. */
  maxQueued: number;
  log: Logger;
  /** First retry delay and the cap of the exponential backoff, ms. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Jitter source (tests pass a fixed one). */
  random?: () => number;
}

/** True for errors that mean "the store is away", as opposed to bad data or a bug. */
export function isRetryable(err: unknown): boolean {
  return isImmuneError(err) && err.retryable;
}

/**
 * Wraps any Store so that an outage never stops the control plane and never
 * loses an accepted write silently. Writes go straight through while the
 * store answers; when it stops answering they are appended (fsynced) to a
 * spill file under the cache directory, in order, up to maxQueued records; a
 * background loop retries with exponential backoff and delivers the spill in
 * order, then switches back. Vitals beyond the bound are dropped and counted;
 * events are never dropped (they are the workflow state). A write the store
 * refuses as invalid is counted as rejected and logged, not retried forever.
 * Reads pass through (events include those still in the spill).
 */
export class ResilientStore implements Store {
  readonly kind: Store['kind'];
  private readonly spill: SpillFile;
  private readonly initialBackoff: number;
  private readonly maxBackoff: number;
  private readonly random: () => number;
  private readonly inFlight = new Set<Promise<void>>();
  private degraded = false;
  private innerOpen = false;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private backoff: number;
  private draining: Promise<void> | null = null;
  private readonly stats = { spilled: 0, dropped: 0, rejected: 0, last_error: null as string | null, since: null as number | null };
  private readonly snapshotDir: string;

  constructor(
    readonly inner: Store,
    private readonly opts: ResilientOptions,
  ) {
    this.kind = inner.kind;
    this.spill = new SpillFile(opts.spillDir);
    this.snapshotDir = join(opts.spillDir, 'snapshots');
    this.initialBackoff = opts.initialBackoffMs ?? 250;
    this.maxBackoff = opts.maxBackoffMs ?? 30_000;
    this.random = opts.random ?? Math.random;
    this.backoff = this.initialBackoff;
  }

  queueStats(): QueueStats & { rejected: number } {
    return { queued: this.spill.records, spilled: this.stats.spilled, dropped: this.stats.dropped, rejected: this.stats.rejected, last_error: this.stats.last_error, degraded: this.degraded };
  }

  // ───────────────────────────── lifecycle ─────────────────────────────

  async open(): Promise<void> {
    this.closed = false;
    const left = await this.spill.load();
    if (left.damaged > 0) this.opts.log.error({ lines: left.damaged }, 'spill file has damaged lines; they are skipped and counted as dropped');
    this.stats.dropped += left.damaged;
    try {
      await this.inner.open();
      this.innerOpen = true;
    } catch (err) {
      if (!isRetryable(err)) throw err;
      this.enterDegraded(err);
    }
    if (left.ops > 0 || this.pendingSnapshots().length > 0) {
      this.opts.log.warn({ records: left.records }, 'writes spilled by an earlier run are waiting; delivering them');
      this.enterDegraded(null);
      await this.recover();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.allSettled([...this.inFlight]);
    await this.draining?.catch(() => undefined);
    this.spill.close();
    // What is still spilled stays on disk for the next start.
    if (this.innerOpen) await this.inner.close();
    this.innerOpen = false;
  }

  async health(): Promise<StoreHealth> {
    const queue = this.queueStats();
    if (this.degraded) {
      return { ok: false, kind: this.kind, detail: `degraded: ${this.stats.last_error ?? 'delivering spilled writes'}; ${queue.queued} records queued on disk`, queue };
    }
    const h = await this.inner.health();
    return { ...h, queue };
  }

  // ───────────────────────────── writes ─────────────────────────────

  /**
   * Tracks writes in flight (close waits for them). Writes are not serialised:
   * concurrent batches reach the store together (group commit), and order does
   * not matter to any adapter (events are keyed by seq, vitals by time). The
   * spill-or-send decision and the switch back are synchronous, so no write can
   * land in the spill after the drain has read it for the last time.
   */
  private track(p: Promise<void>): Promise<void> {
    this.inFlight.add(p);
    void p.catch(() => undefined).finally(() => this.inFlight.delete(p));
    return p;
  }

  private async apply(op: SpillOp): Promise<void> {
    switch (op.k) {
      case 'vitals':
        return this.inner.appendVitals(op.run, op.rows);
      case 'events':
        return this.inner.appendEvents(op.run, op.events);
      case 'agent':
        return this.inner.upsertAgent(op.run, op.agent);
      case 'records':
        return this.inner.appendRecords(op.run, op.records);
      case 'run':
        return this.inner.registerRun(op.run);
    }
  }

  private write(op: SpillOp): Promise<void> {
    if (recordsIn(op) === 0) return Promise.resolve();
    return this.track(
      (async () => {
        if (!this.degraded) {
          try {
            await this.apply(op);
            return;
          } catch (err) {
            if (!isRetryable(err)) return this.reject(op, err);
            this.enterDegraded(err);
          }
        }
        this.spillOp(op);
      })(),
    );
  }

  private spillOp(op: SpillOp): void {
    let toSpill = op;
    const room = this.opts.maxQueued - this.spill.records;
    if (op.k === 'vitals' && op.rows.length > room) {
      // Only vitals are dropped at the bound: events carry the workflow state and are always kept.
      const lost = op.rows.length - Math.max(0, room);
      this.stats.dropped += lost;
      this.stats.last_error = `queue full (${this.opts.maxQueued} records): ${lost} vitals dropped`;
      this.opts.log.error({ dropped: lost, total_dropped: this.stats.dropped, max: this.opts.maxQueued }, 'store queue full: vitals dropped');
      if (room <= 0) return;
      toSpill = { ...op, rows: op.rows.slice(0, room) };
    }
    try {
      this.spill.append(toSpill);
      this.stats.spilled += recordsIn(toSpill);
    } catch (err) {
      this.stats.dropped += recordsIn(toSpill);
      this.stats.last_error = `cannot write the spill file: ${(err as Error).message}`;
      this.opts.log.error({ err, dropped: recordsIn(toSpill) }, 'store unreachable and spill file unwritable: records dropped');
    }
  }

  private reject(op: SpillOp, err: unknown): void {
    this.stats.rejected += recordsIn(op);
    this.stats.last_error = `store refused ${op.k}: ${(err as Error).message}`;
    this.opts.log.error({ err, kind: op.k, records: recordsIn(op) }, 'store refused a write as invalid; it is not retried');
  }

  private enterDegraded(err: unknown): void {
    if (err) this.stats.last_error = (err as Error).message;
    if (!this.degraded) {
      this.degraded = true;
      this.stats.since = Date.now() / 1000;
      this.backoff = this.initialBackoff;
      this.opts.log.warn({ err }, 'store unreachable: writes are spilled to disk until it is back');
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.timer || !this.degraded) return;
    const delay = this.backoff * (0.5 + this.random() / 2);
    this.backoff = Math.min(this.maxBackoff, this.backoff * 2);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.recover();
    }, delay);
    this.timer.unref?.();
  }

  /**
   * Tries now to reach the store and deliver everything spilled (in order);
   * on success switches back to direct writes. Safe to call any time (tests
   * call it after restarting the backend instead of waiting for the backoff).
   */
  recover(): Promise<void> {
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
    });
    return this.draining;
  }

  private async drain(): Promise<void> {
    if (!this.degraded || this.closed) return;
    try {
      if (!this.innerOpen) {
        await this.inner.open();
        this.innerOpen = true;
      }
      for (;;) {
        // Deliver what is on disk; new writes keep appending behind us meanwhile.
        for await (const { op, end } of this.spill.read()) {
          if (op) {
            try {
              await this.apply(op);
            } catch (err) {
              if (isRetryable(err)) throw err;
              this.reject(op, err);
            }
          } else {
            this.stats.dropped += 1;
          }
          this.spill.advance(end, op);
        }
        await this.flushSnapshots();
        // Synchronous check and switch: a write either appended before this line (and is read next round) or goes direct after it.
        if (this.spill.pendingOps === 0 && this.pendingSnapshots().length === 0) {
          this.spill.clear();
          this.degraded = false;
          this.backoff = this.initialBackoff;
          this.opts.log.info({ spilled_total: this.stats.spilled }, 'store reachable again: spilled writes delivered');
          return;
        }
      }
    } catch (err) {
      if (!isRetryable(err)) this.opts.log.error({ err }, 'delivering spilled writes failed');
      this.stats.last_error = (err as Error).message;
      this.schedule();
    }
  }

  // ───────────────────────────── snapshots (replace semantics) ─────────────────────────────

  private snapshotPath(runId: string): string {
    return join(this.snapshotDir, `${encodeURIComponent(runId)}.json`);
  }

  private pendingSnapshots(): string[] {
    try {
      return readdirSync(this.snapshotDir).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
  }

  private async flushSnapshots(): Promise<void> {
    for (const f of this.pendingSnapshots()) {
      const path = join(this.snapshotDir, f);
      // Taken out of the way first: a newer snapshot saved meanwhile creates a new file instead of being deleted below.
      const sending = `${path}.sending`;
      renameSync(path, sending);
      try {
        await this.inner.saveSnapshot(decodeURIComponent(f.slice(0, -5)), JSON.parse(readFileSync(sending, 'utf8')) as EngineSnapshot);
        rmSync(sending, { force: true });
      } catch (err) {
        if (existsSync(path)) rmSync(sending, { force: true });
        else renameSync(sending, path);
        throw err;
      }
    }
  }

  /** Only the latest snapshot matters, so while degraded it replaces a file instead of queueing. */
  saveSnapshot(runId: string, snapshot: EngineSnapshot, encoded?: Buffer): Promise<void> {
    return this.track(
      (async () => {
        if (!this.degraded) {
          try {
            await this.inner.saveSnapshot(runId, snapshot, encoded);
            return;
          } catch (err) {
            if (!isRetryable(err)) throw err;
            this.enterDegraded(err);
          }
        }
        mkdirSync(this.snapshotDir, { recursive: true, mode: 0o700 });
        const path = this.snapshotPath(runId);
        writeFileSync(`${path}.tmp`, encoded ?? JSON.stringify(snapshot), { mode: 0o600 });
        renameSync(`${path}.tmp`, path);
      })(),
    );
  }

  async loadSnapshot(runId: string): Promise<EngineSnapshot | null> {
    try {
      return JSON.parse(readFileSync(this.snapshotPath(runId), 'utf8')) as EngineSnapshot;
    } catch {
      return this.inner.loadSnapshot(runId);
    }
  }

  // ───────────────────────────── the Store interface ─────────────────────────────

  appendVitals(runId: string, batch: readonly Vitals[]): Promise<void> {
    return this.write({ k: 'vitals', run: runId, rows: [...batch] });
  }

  appendEvents(runId: string, events: readonly ImmuneEvent[]): Promise<void> {
    return this.write({ k: 'events', run: runId, events: [...events] });
  }

  upsertAgent(runId: string, agent: RegisteredAgent): Promise<void> {
    return this.write({ k: 'agent', run: runId, agent });
  }

  appendRecords(runId: string, records: readonly SeedRecord[]): Promise<void> {
    return this.write({ k: 'records', run: runId, records: [...records] });
  }

  registerRun(runId: string): Promise<void> {
    return this.write({ k: 'run', run: runId });
  }

  /** Events from the store plus those still waiting in the spill, so a restart during an outage sees the whole log. */
  async readEvents(runId: string, q: EventQuery = {}): Promise<ImmuneEvent[]> {
    const stored = await this.inner.readEvents(runId, q);
    if (this.spill.pendingOps === 0) return stored;
    const spilled: ImmuneEvent[] = [];
    for await (const { op } of this.spill.read()) if (op?.k === 'events' && op.run === runId) spilled.push(...op.events);
    return filterEvents([...stored, ...spilled], q);
  }

  recentVitals(runId: string, agentId: string, opts: { windowSeconds?: number; limit?: number; now?: number }): Promise<Vitals[]> {
    return this.inner.recentVitals(runId, agentId, opts);
  }

  latestVitals(runId: string): Promise<Vitals[]> {
    return this.inner.latestVitals(runId);
  }

  vitalsCount(runId: string, agentId?: string): Promise<number> {
    return this.inner.vitalsCount(runId, agentId);
  }

  agents(runId: string): Promise<RegisteredAgent[]> {
    return this.inner.agents(runId);
  }

  readRecords(runId: string, q: { measurement: SeedMeasurement; agentId?: string; limit?: number }): Promise<SeedRecord[]> {
    return this.inner.readRecords(runId, q);
  }

  latestRun(): Promise<string | null> {
    return this.inner.latestRun();
  }

  pruneVitals(olderThanTs: number): Promise<number> {
    return this.inner.pruneVitals(olderThanTs);
  }
}
