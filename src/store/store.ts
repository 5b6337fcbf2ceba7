import type { AgentMeta, ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import type { EngineSnapshot } from '../engine/engine.js';

export type StoreKind = 'memory' | 'sqlite' | 'influx' | 'api';

export interface StoreHealth {
  ok: boolean;
  kind: StoreKind;
  detail: string;
}

export interface EventQuery {
  /** Only events with seq > afterSeq. */
  afterSeq?: number;
  /** Only events with seq < beforeSeq (paging backwards). */
  beforeSeq?: number;
  agentId?: string;
  types?: readonly string[];
  /** Epoch seconds, inclusive. */
  sinceTs?: number;
  untilTs?: number;
  limit?: number;
  order?: 'asc' | 'desc';
}

export interface RegisteredAgent {
  agent_id: string;
  meta: AgentMeta;
}

/**
 * Everything the control plane persists, scoped by run_id (DESIGN §2). One
 * contract suite (test/store/contract.ts) runs against every adapter.
 * Errors from an unreachable backend are ImmuneError IMM_ERR_STORE_UNAVAILABLE
 * with retryable = true; anything else is a bug or bad input.
 */
export interface Store {
  readonly kind: StoreKind;
  open(): Promise<void>;
  /** Flushes and releases; safe to call twice. */
  close(): Promise<void>;
  health(): Promise<StoreHealth>;

  appendVitals(runId: string, batch: readonly Vitals[]): Promise<void>;
  /** Samples of one agent, oldest first: those within windowSeconds before `now`, at most `limit` (the newest ones). */
  recentVitals(runId: string, agentId: string, opts: { windowSeconds?: number; limit?: number; now?: number }): Promise<Vitals[]>;
  /** The newest sample of every agent. */
  latestVitals(runId: string): Promise<Vitals[]>;
  vitalsCount(runId: string, agentId?: string): Promise<number>;

  appendEvents(runId: string, events: readonly ImmuneEvent[]): Promise<void>;
  readEvents(runId: string, q?: EventQuery): Promise<ImmuneEvent[]>;

  /** Replaces the run's detection snapshot (baselines and sentinel state). */
  saveSnapshot(runId: string, snapshot: EngineSnapshot): Promise<void>;
  loadSnapshot(runId: string): Promise<EngineSnapshot | null>;

  upsertAgent(runId: string, agent: RegisteredAgent): Promise<void>;
  agents(runId: string): Promise<RegisteredAgent[]>;

  /** The most recently active run, so a control plane that lost its local state can continue it. */
  latestRun(): Promise<string | null>;
  /** Deletes vitals older than the timestamp (all runs); returns how many. Events are kept. */
  pruneVitals(olderThanTs: number): Promise<number>;
}
