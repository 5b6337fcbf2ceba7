import type { DiagnosisType, HealingAction } from '../domain/types.js';

/**
 * The seed's ladders, gentlest first; the seed's last resort (clone_agent)
 * is reset_agent here and ends every ladder. A provider incident has no
 * ladder: the agents are not at fault.
 */
export const LADDERS: Readonly<Record<DiagnosisType, readonly HealingAction[]>> = Object.freeze({
  prompt_drift: ['reset_memory', 'rollback_prompt', 'reduce_autonomy', 'reset_agent'],
  prompt_injection: ['revoke_tools', 'reset_memory', 'rollback_prompt', 'reset_agent'],
  infinite_loop: ['revoke_tools', 'reduce_autonomy', 'reset_memory', 'reset_agent'],
  tool_instability: ['reduce_autonomy', 'rollback_prompt', 'reset_agent'],
  memory_corruption: ['reset_memory', 'reset_agent'],
  cost_overrun: ['reduce_autonomy', 'revoke_tools', 'reset_agent'],
  unknown: ['reset_memory', 'reduce_autonomy', 'reset_agent'],
  external_cause: [],
});

export const LAST_RESORT: HealingAction = 'reset_agent';

export interface OutcomeCounts {
  successes: number;
  failures: number;
}

/** Laplace-smoothed success rate, so an untried action starts at 0.5. */
export function successRate(c: OutcomeCounts | undefined): number {
  return c ? (c.successes + 1) / (c.successes + c.failures + 2) : 0.5;
}

/**
 * The ladder for a diagnosis ordered by what has worked across the fleet;
 * ties keep the seed's order and the last resort stays last.
 */
export function orderedLadder(diagnosis: DiagnosisType, fleet: (d: DiagnosisType, a: HealingAction) => OutcomeCounts | undefined): HealingAction[] {
  const base = LADDERS[diagnosis].filter((a) => a !== LAST_RESORT);
  const ranked = base
    .map((action, idx) => ({ action, idx, rate: successRate(fleet(diagnosis, action)) }))
    .sort((a, b) => b.rate - a.rate || a.idx - b.idx)
    .map((x) => x.action);
  return LADDERS[diagnosis].includes(LAST_RESORT) ? [...ranked, LAST_RESORT] : ranked;
}

export interface PlanInput {
  /** Hypotheses in rank order. */
  diagnoses: readonly DiagnosisType[];
  /** Start from this hypothesis (earlier ones were exhausted). */
  fromHypothesis: number;
  /** Actions already tried in this episode, under any hypothesis. */
  tried: ReadonlySet<HealingAction>;
  /** Actions immune memory says failed for this agent and diagnosis. */
  failedFor: (d: DiagnosisType) => ReadonlySet<HealingAction>;
  fleet: (d: DiagnosisType, a: HealingAction) => OutcomeCounts | undefined;
  /** Operator override ("heal now" on an exhausted agent): do not skip remembered failures. */
  ignoreMemory: boolean;
}

export type Plan = { kind: 'action'; hypothesis: number; diagnosis: DiagnosisType; action: HealingAction } | { kind: 'exhausted' };

/** Next healing step: first untried, not-known-to-fail action, falling back to the next hypothesis when a ladder is spent. */
export function planNextAction(p: PlanInput): Plan {
  for (let h = p.fromHypothesis; h < p.diagnoses.length; h++) {
    const d = p.diagnoses[h];
    const failed = p.ignoreMemory ? new Set<HealingAction>() : p.failedFor(d);
    for (const action of orderedLadder(d, p.fleet)) {
      if (!p.tried.has(action) && !failed.has(action)) return { kind: 'action', hypothesis: h, diagnosis: d, action };
    }
  }
  return { kind: 'exhausted' };
}
