import type { Logger } from '../log.js';
import { isRetryable } from './resilient.js';
import type { Store } from './store.js';

export interface RetentionOptions {
  /** VITALS_RETENTION_DAYS. */
  retentionDays: number;
  /** How often to prune, ms (default 10 minutes; the first run is right after start). */
  intervalMs?: number;
  log: Logger;
  /** Epoch seconds. */
  now?: () => number;
}

/**
 * Deletes vitals older than the retention in the background; events are kept.
 * The SQLite adapter deletes in small chunks between write transactions, so
 * pruning never stalls ingest.
 */
export class RetentionPruner {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly o: RetentionOptions,
  ) {
    this.now = o.now ?? (() => Date.now() / 1000);
  }

  /** The cutoff: vitals with a timestamp before it are deleted. */
  cutoff(): number {
    return this.now() - this.o.retentionDays * 86_400;
  }

  start(): void {
    if (this.timer) return;
    const tick = () => {
      void this.runOnce().finally(() => {
        if (this.timer) this.timer = setTimeout(tick, this.o.intervalMs ?? 600_000).unref();
      });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  /** One pass; concurrent calls share it. Returns how many vitals were deleted (0 when the store is away). */
  runOnce(): Promise<number> {
    this.running ??= (async () => {
      const cutoff = this.cutoff();
      try {
        const n = await this.store.pruneVitals(cutoff);
        if (n > 0) this.o.log.info({ deleted: n, older_than: new Date(cutoff * 1000).toISOString() }, 'old vitals pruned');
        return n;
      } catch (err) {
        if (isRetryable(err)) this.o.log.debug({ err }, 'retention skipped: store unreachable');
        else this.o.log.warn({ err }, 'retention pass failed');
        return 0;
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
