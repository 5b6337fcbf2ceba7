import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import type { ImmuneEvent } from '../domain/events.js';
import type { EngineSnapshot } from '../engine/engine.js';
import type { Logger } from '../log.js';
import { openStore } from '../store/open-store.js';
import type { ResilientStore } from '../store/resilient.js';
import { RetentionPruner } from '../store/retention.js';
import { LocalState, type GeneratedKeys, type WorkflowSummary } from './local-state.js';
import { resolveRunId, type RunIdSource } from './run-id.js';

type PersistenceConfig = Pick<
  Config,
  'store' | 'serverApiBaseUrl' | 'serverApiKey' | 'serverRunId' | 'influxUrl' | 'influxToken' | 'influxBucket' | 'cacheDir' | 'storeQueueMax' | 'vitalsRetentionDays' | 'ingestApiKey' | 'operatorToken' | 'webhookSecret' | 'sqliteSynchronous'
>;

export interface Keys {
  ingest_api_key: string;
  operator_token: string;
  webhook_secret: string;
  /** Which came from the environment and which were generated (and persisted) here. */
  source: Record<'ingest_api_key' | 'operator_token' | 'webhook_secret', 'env' | 'local-state' | 'generated'>;
}

/** Everything a starting control plane needs to come back to where it was. */
export interface Persistence {
  store: ResilientStore;
  local: LocalState;
  runId: string;
  runIdSource: RunIdSource;
  keys: Keys;
  /** The run's event log, to fold back with ImmuneEngine.restore (includes writes still spilled on disk). */
  events: ImmuneEvent[];
  /** Detection state: the local snapshot of this run, else the store's; null = baselines are relearned. */
  snapshot: EngineSnapshot | null;
  snapshotSource: 'local' | 'store' | 'none';
  /** Problems found on the way (damaged local files, store unreachable); the process started anyway. */
  warnings: string[];
  pruner: RetentionPruner;
  /** Saves detection state locally (fast, for the next restart) and in the store (for a host that lost its disk). */
  checkpoint(snapshot: EngineSnapshot, workflow?: WorkflowSummary, encoded?: Buffer): Promise<void>;
  /** Stops retention, saves nothing more, closes the store; safe twice. */
  close(): Promise<void>;
}

/**
 * A snapshot known by its JSON encoding: stores that keep the bytes (SQLite, the server API, the
 * local file) never build its objects; one that wants them (memory, InfluxDB) decodes them on first use.
 */
export function encodedSnapshot(seq: number, bytes: Buffer): EngineSnapshot {
  let agents: EngineSnapshot['agents'] | undefined;
  return {
    seq,
    get agents() {
      agents ??= (JSON.parse(bytes.toString('utf8')) as EngineSnapshot).agents;
      return agents;
    },
  };
}

/** A secret for generated keys: 32 random bytes, URL-safe. */
export function generateSecret(prefix: string): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

/** Environment first, then what an earlier start generated, else a new one (persisted by the caller). */
export function resolveKeys(c: Pick<PersistenceConfig, 'ingestApiKey' | 'operatorToken' | 'webhookSecret'>, saved: GeneratedKeys): Keys {
  const pick = (env: string, stored: string | undefined, prefix: string) => (env !== '' ? { v: env, s: 'env' as const } : stored ? { v: stored, s: 'local-state' as const } : { v: generateSecret(prefix), s: 'generated' as const });
  const ingest = pick(c.ingestApiKey, saved.ingest_api_key, 'imm-');
  const operator = pick(c.operatorToken, saved.operator_token, 'op-');
  const webhook = pick(c.webhookSecret, saved.webhook_secret, 'whs-');
  return {
    ingest_api_key: ingest.v,
    operator_token: operator.v,
    webhook_secret: webhook.v,
    source: { ingest_api_key: ingest.s, operator_token: operator.s, webhook_secret: webhook.s },
  };
}

/**
 * Opens the store and the local state and decides the run (seed deployment
 * scenarios): continue the local run; if the local state is lost, continue
 * the store's latest run (its baselines and log come back from the store);
 * --new-run or nothing known starts a fresh one. Never fails for damaged
 * local files or an unreachable store: it reports them in `warnings`.
 */
export async function openPersistence(c: PersistenceConfig, log: Logger, o: { newRun?: boolean; retentionIntervalMs?: number } = {}): Promise<Persistence> {
  const warnings: string[] = [];
  const local = new LocalState(c.cacheDir, log.child({ module: 'local-state' }));
  const { state, warnings: localWarnings } = local.load();
  warnings.push(...localWarnings);
  const store = await openStore(c, log);
  if (store.inner.kind === 'sqlite') warnings.push(...((store.inner as { warnings?: string[] }).warnings ?? []));

  let latestInStore: string | null = null;
  if (!state.run_id && !o.newRun) {
    try {
      latestInStore = await store.latestRun();
    } catch (err) {
      warnings.push(`could not ask the store for its latest run (${(err as Error).message}); starting a fresh run`);
    }
  }
  const { runId, source } = resolveRunId({ newRun: o.newRun ?? false, serverRunId: store.kind === 'api' ? c.serverRunId : '', local: state.run_id, latestInStore });

  let events: ImmuneEvent[] = [];
  if (source !== 'new-run' && source !== 'fresh') {
    try {
      events = await store.readEvents(runId);
    } catch (err) {
      warnings.push(`the store is unreachable (${(err as Error).message}): workflow state of run ${runId} cannot be read back now; detection resumes from the local snapshot`);
    }
  }

  let snapshot: EngineSnapshot | null = null;
  let snapshotSource: Persistence['snapshotSource'] = 'none';
  if (state.snapshot && state.run_id === runId) {
    snapshot = state.snapshot;
    snapshotSource = 'local';
  } else if (source !== 'new-run' && source !== 'fresh') {
    try {
      snapshot = await store.loadSnapshot(runId);
      if (snapshot) snapshotSource = 'store';
    } catch (err) {
      warnings.push(`could not load the baseline snapshot from the store (${(err as Error).message}); baselines are relearned`);
    }
  }

  const keys = resolveKeys(c, state.keys);
  const generated: GeneratedKeys = {};
  for (const k of ['ingest_api_key', 'operator_token', 'webhook_secret'] as const) if (keys.source[k] !== 'env') generated[k] = keys[k];
  local.save({ run_id: runId, keys: generated, ...(runId !== state.run_id ? { last_seq: 0, workflow: { quarantined: [], pending: [], rejected: [] } } : {}) });
  await store.registerRun(runId);

  const pruner = new RetentionPruner(store, { retentionDays: c.vitalsRetentionDays, intervalMs: o.retentionIntervalMs, log: log.child({ module: 'retention' }) });
  pruner.start();
  for (const w of warnings) log.warn({ run_id: runId }, w);
  log.info({ run_id: runId, run_id_source: source, events: events.length, snapshot: snapshotSource, agents: snapshot?.agents.length ?? 0 }, 'persistent state loaded');

  let closed = false;
  return {
    store,
    local,
    runId,
    runIdSource: source,
    keys,
    events,
    snapshot,
    snapshotSource,
    warnings,
    pruner,
    checkpoint: async (snap, workflow, encoded) => {
      // Encoded once for both copies: at 10,000 agents the snapshot is about 11 MB of JSON.
      const bytes = encoded ?? Buffer.from(JSON.stringify(snap));
      await local.saveSnapshot(snap, bytes);
      await local.saveInBackground({ last_seq: snap.seq, ...(workflow ? { workflow } : {}) });
      await store.saveSnapshot(runId, snap, bytes);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await pruner.stop();
      await store.close();
    },
  };
}
