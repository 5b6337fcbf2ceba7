import { randomUUID } from 'node:crypto';

export type RunIdSource = 'new-run' | 'server' | 'local' | 'store' | 'fresh';

/** A new run id in the seed's format: run-<12 hex>. */
export function generateRunId(): string {
  return `run-${randomUUID().replace(/-/g, '').slice(0, 12)}`;
}

/**
 * Which run a starting control plane continues (seed "deployment scenarios"):
 * --new-run starts a fresh one; SERVER_RUN_ID pins one (client-deployed);
 * else the run in the local state; if the local state was lost, the store's
 * most recently active run (so baselines and the event log come back from
 * the store); else a fresh run.
 */
export function resolveRunId(o: { newRun: boolean; serverRunId: string; local: string | null; latestInStore: string | null; generate?: () => string }): { runId: string; source: RunIdSource } {
  const gen = o.generate ?? generateRunId;
  if (o.newRun) return { runId: gen(), source: 'new-run' };
  if (o.serverRunId !== '') return { runId: o.serverRunId, source: 'server' };
  if (o.local) return { runId: o.local, source: 'local' };
  if (o.latestInStore) return { runId: o.latestInStore, source: 'store' };
  return { runId: gen(), source: 'fresh' };
}
