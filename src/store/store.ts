import type { AgentMeta, ImmuneEvent } from '../domain/events.js';
import type { Vitals } from '../domain/vitals.js';
import type { EngineSnapshot } from '../engine/engine.js';

export type StoreKind = 'memory' | 'sqlite' | 'influx' | 'api';

/** Counters of the resilient wrapper (src/store/resilient.ts) for /readyz and the dashboard. */
export interface QueueStats {
  /** Records accepted but not yet in the store (spilled to disk while the store is unreachable). */
  queued: number;
  /** Records that went through the disk spill since start. */
  spilled: number;
  /** Records lost because the queue bound (STORE_QUEUE_MAX) was hit: counted, never silent. */
  dropped: number;
  last_error: string | null;
  /** True while writes cannot reach the store (they are being spilled). */
  degraded: boolean;
}

export interface StoreHealth {
  ok: boolean;
  kind: StoreKind;
  detail: string;
  /** Present when the store is wrapped by the resilient queue. */
  queue?: QueueStats;
}

/**
 * The seed's measurements that a prototype-shaped client can write directly
 * (POST /api/v1/events/infection, /approvals, /healing/events, /action-log,
 * /baselines). Our own control plane never writes these: its equivalents are
 * views over the event log (src/store/seed-views.ts).
 */
export const SEED_MEASUREMENTS = ['infection_event', 'quarantine_event', 'approval_event', 'healing_event', 'action_log', 'baseline_profile'] as const;
export type SeedMeasurement = (typeof SEED_MEASUREMENTS)[number];

/** One record written through a seed-shaped endpoint, kept as sent (fields are the seed's body). */
export interface SeedRecord {
  measurement: SeedMeasurement;
  agent_id: string;
  /** Epoch seconds. */
  ts: number;
  fields: Record<string, unknown>;
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
  /** Samples of one agent, oldest first: those at or after `now - windowSeconds` (now defaults to the wall clock), at most `limit` (the newest ones). */
  recentVitals(runId: string, agentId: string, opts: { windowSeconds?: number; limit?: number; now?: number }): Promise<Vitals[]>;
  /** The newest sample of every agent. */
  latestVitals(runId: string): Promise<Vitals[]>;
  vitalsCount(runId: string, agentId?: string): Promise<number>;

  appendEvents(runId: string, events: readonly ImmuneEvent[]): Promise<void>;
  readEvents(runId: string, q?: EventQuery): Promise<ImmuneEvent[]>;

  /**
   * Replaces the run's detection snapshot (baselines and sentinel state).
   * `encoded`, when given, is the snapshot's JSON as UTF-8 bytes, already made
   * by the caller (a fleet's snapshot is megabytes: adapters that store the
   * text send or keep these bytes instead of encoding it again).
   */
  saveSnapshot(runId: string, snapshot: EngineSnapshot, encoded?: Buffer): Promise<void>;
  loadSnapshot(runId: string): Promise<EngineSnapshot | null>;

  upsertAgent(runId: string, agent: RegisteredAgent): Promise<void>;
  agents(runId: string): Promise<RegisteredAgent[]>;

  /** Seed-shaped records (see SeedRecord); appended as sent. */
  appendRecords(runId: string, records: readonly SeedRecord[]): Promise<void>;
  /** Records of one measurement, oldest first; with `limit`, the newest ones. */
  readRecords(runId: string, q: { measurement: SeedMeasurement; agentId?: string; limit?: number }): Promise<SeedRecord[]>;

  /** Marks the run as the most recently active one (a fresh run before its first write; POST /api/v1/run). */
  registerRun(runId: string): Promise<void>;
  /** The most recently active run (registered or written to), so a control plane that lost its local state can continue it. */
  latestRun(): Promise<string | null>;
  /** Deletes vitals older than the timestamp (all runs); returns how many. Events are kept. */
  pruneVitals(olderThanTs: number): Promise<number>;
}
