/** Lifecycle states the control plane reports for an agent (docs/API.md). */
export type AgentStatus = 'learning' | 'healthy' | 'quarantined' | 'pending_approval' | 'healing' | 'probation' | 'rejected' | 'exhausted';

/**
 * States in which the agent should not execute tasks. Probation is not one of
 * them: after a healing action the agent runs normally and is judged on its
 * fresh vitals.
 */
export const CONTAINED_STATUSES: ReadonlySet<string> = new Set(['quarantined', 'pending_approval', 'healing', 'rejected', 'exhausted']);

export function isContained(status: string | null): boolean {
  return status !== null && CONTAINED_STATUSES.has(status);
}

/** Healing actions the control plane may ask an agent to apply. */
export type HealingAction = 'reset_memory' | 'rollback_prompt' | 'reduce_autonomy' | 'revoke_tools' | 'reset_agent';

/** A healing action the agent is asked to apply, from an ingest answer or the directive poll. */
export interface Directive {
  /** Acknowledge with this id. */
  id: string;
  action: HealingAction | (string & {});
  /** Why: the diagnosis being treated, e.g. prompt_drift. */
  diagnosis: string;
}

/**
 * What an on_directive handler returns: nothing or `true` = applied; `false`
 * = could not apply; or an explicit outcome with a detail for the audit log.
 * A thrown error is acknowledged as not applied, with its message as detail.
 */
export type DirectiveResult = void | undefined | boolean | string | { ok: boolean; detail?: string };

/** Normalises a handler's result into the acknowledgement body. */
export function ackBodyOf(result: DirectiveResult): { ok: boolean; detail?: string } {
  if (result === undefined || result === true) return { ok: true };
  if (result === false) return { ok: false };
  if (typeof result === 'string') return { ok: true, detail: result.slice(0, 500) };
  if (typeof result === 'object' && result !== null && typeof result.ok === 'boolean') {
    return result.detail === undefined ? { ok: result.ok } : { ok: result.ok, detail: String(result.detail).slice(0, 500) };
  }
  return { ok: true };
}
