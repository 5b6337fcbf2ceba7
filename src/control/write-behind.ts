import type { ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

const FLUSH_MS = 25;
const MAX_BATCH = 5000;
/**
 * Shortest time between two writes that someone waits for. Without it, single-record requests on a
 * fast store each got their own commit: one message to the writer thread and one transaction per
 * one to three records, which cost more CPU than the requests themselves. 2 ms bounds commits to
 * 500 a second and adds at most 2 ms to an acknowledgement.
 */
const MIN_DURABLE_GAP_MS = 2;
/**
 * Writes sent to the store before the first has been acknowledged. With one, data that arrived during a
 * write waited for its acknowledgement to come back (and for this thread to see it) before its own write
 * was even sent: at 15,000 requests/s that hop was a good part of the p99. With two, the next batch is
 * already queued at the writer thread, which commits it right after the first. More would only add
 * latency to the queue when the writer is slow.
 */
const MAX_IN_FLIGHT = 2;

/** One promise for everyone whose data is in the same batch: no promise or closure per request. */
interface Batch {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Group commit into the store. Everything is queued and written in batches;
 * a caller that must not answer before its data is stored (an ingest request,
 * an operator command) awaits `durable()`, which starts a write at once and
 * resolves when the batch holding its data is in the store — requests that
 * arrive meanwhile share the next batch, so durability costs latency, not
 * throughput. Data nobody waits for (simulated agents) goes every 25 ms.
 * Up to MAX_IN_FLIGHT writes are sent ahead of their acknowledgements; the
 * store applies them in order. A failed write goes back to the queue front and
 * its waiters get the error; nothing is dropped here. (A write after a failed
 * one may land first: no store depends on the order, events are keyed by seq
 * and vitals by time.)
 */
export class WriteBehind {
  private vitalsQ: Vitals[] = [];
  private eventsQ: ImmuneEvent[] = [];
  /** Settles when the data queued now is in the store; created by the first `durable()` that needs it. */
  private waiting: Batch | null = null;
  private timer: NodeJS.Timeout | null = null;
  private kicked = false;
  /** performance.now() when the last write started. */
  private lastWrite = -Infinity;
  /** Writes sent and not yet settled, oldest first. */
  private inflight: Array<Promise<void>> = [];
  private failures = 0;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly runId: string,
    private readonly log: Logger,
  ) {}

  vitals(v: Vitals): void {
    this.vitalsQ.push(v);
    this.schedule();
  }

  events(es: readonly ImmuneEvent[]): void {
    for (const e of es) this.eventsQ.push(e);
    this.schedule();
  }

  /** Resolves once everything queued before the call is in the store (rejects if the store refused it). */
  durable(): Promise<void> {
    if (this.vitalsQ.length === 0 && this.eventsQ.length === 0) {
      // The caller's data may be in the write in flight: once it settles, a failed batch is back in
      // the queue, and this waits for the retry (rejecting if that fails too).
      return this.inflight.length > 0 ? Promise.all(this.inflight).then(() => this.durable()) : Promise.resolve();
    }
    this.waiting ??= newBatch();
    this.kick();
    return this.waiting.promise;
  }

  stats(): { queued: number; dropped: number; failures: number } {
    return { queued: this.vitalsQ.length + this.eventsQ.length, dropped: 0, failures: this.failures };
  }

  /**
   * Starts a write on the next turn of the event loop, so requests parsed in this turn share it, and
   * no sooner than MIN_DURABLE_GAP_MS after the previous one, so requests of the next few turns do too.
   */
  private kick(): void {
    if (this.kicked || this.closed) return;
    this.kicked = true;
    const go = () => {
      this.kicked = false;
      void this.flush();
    };
    const wait = this.lastWrite + MIN_DURABLE_GAP_MS - performance.now();
    if (wait > 0) setTimeout(go, wait);
    else setImmediate(go);
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.vitalsQ.length + this.eventsQ.length >= MAX_BATCH) {
      this.kick();
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, FLUSH_MS);
      this.timer.unref?.();
    }
  }

  /** Writes everything queued so far (once fewer than MAX_IN_FLIGHT writes are in flight). */
  async flush(): Promise<void> {
    while (this.inflight.length >= MAX_IN_FLIGHT) await this.inflight[0];
    const waiting = this.waiting;
    this.waiting = null;
    if (this.vitalsQ.length === 0 && this.eventsQ.length === 0) {
      waiting?.resolve();
      return;
    }
    this.lastWrite = performance.now();
    const events = this.eventsQ;
    const vitals = this.vitalsQ;
    this.eventsQ = [];
    this.vitalsQ = [];
    let error: unknown = null;
    // Events and vitals go to the store side by side: one round trip per group commit, not two.
    const write = (async () => {
      const [ev, vi] = await Promise.allSettled([events.length > 0 ? this.store.appendEvents(this.runId, events) : undefined, vitals.length > 0 ? this.store.appendVitals(this.runId, vitals) : undefined]);
      if (ev.status === 'rejected') {
        error = ev.reason;
        this.failures += 1;
        // Events stay in order: the failed batch goes back in front.
        this.eventsQ = events.concat(this.eventsQ);
        this.log.warn({ err: ev.reason, events: events.length }, 'event write failed; will retry');
      }
      if (vi.status === 'rejected') {
        error ??= vi.reason;
        this.failures += 1;
        this.vitalsQ = vitals.concat(this.vitalsQ);
        this.log.warn({ err: vi.reason, vitals: vitals.length }, 'vitals write failed; will retry');
      }
    })();
    this.inflight.push(write);
    try {
      await write;
    } finally {
      this.inflight.splice(this.inflight.indexOf(write), 1);
    }
    if (error) waiting?.reject(error);
    else waiting?.resolve();
    if (!this.closed && (this.vitalsQ.length > 0 || this.eventsQ.length > 0)) this.schedule();
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
    await Promise.all(this.inflight);
    this.closed = true;
  }
}
