import { describe, expect, it } from 'vitest';
import { DIAGNOSIS_TYPES, type DiagnosisType, type HealingAction } from '../../src/domain/types.js';
import { LADDERS, orderedLadder, planNextAction, type OutcomeCounts } from '../../src/engine/healing-policy.js';

const none = () => undefined;
const noFailures = () => new Set<HealingAction>();

describe('healing ladders', () => {
  it.each(DIAGNOSIS_TYPES.filter((d) => d !== 'external_cause'))('%s ends in reset_agent and climbs in order', (d) => {
    const ladder = LADDERS[d];
    expect(ladder[ladder.length - 1]).toBe('reset_agent');
    const seen: HealingAction[] = [];
    const tried = new Set<HealingAction>();
    for (;;) {
      const p = planNextAction({ diagnoses: [d], fromHypothesis: 0, tried, failedFor: noFailures, fleet: none, ignoreMemory: false });
      if (p.kind === 'exhausted') break;
      seen.push(p.action);
      tried.add(p.action);
    }
    expect(seen).toEqual([...ladder]);
  });

  it('external_cause has no ladder: the provider is at fault', () => {
    expect(LADDERS.external_cause).toEqual([]);
    expect(planNextAction({ diagnoses: ['external_cause'], fromHypothesis: 0, tried: new Set(), failedFor: noFailures, fleet: none, ignoreMemory: false }).kind).toBe('exhausted');
  });

  it('skips actions immune memory says failed for this agent and diagnosis', () => {
    const failed = (d: DiagnosisType) => new Set<HealingAction>(d === 'prompt_injection' ? ['revoke_tools', 'reset_memory'] : []);
    const p = planNextAction({ diagnoses: ['prompt_injection'], fromHypothesis: 0, tried: new Set(), failedFor: failed, fleet: none, ignoreMemory: false });
    expect(p).toMatchObject({ kind: 'action', action: 'rollback_prompt' });
    const override = planNextAction({ diagnoses: ['prompt_injection'], fromHypothesis: 0, tried: new Set(), failedFor: failed, fleet: none, ignoreMemory: true });
    expect(override).toMatchObject({ kind: 'action', action: 'revoke_tools' });
  });

  it('falls back to the next hypothesis when a ladder is spent, without repeating actions', () => {
    const tried = new Set<HealingAction>(['reset_memory', 'reset_agent']);
    const p = planNextAction({ diagnoses: ['memory_corruption', 'infinite_loop'], fromHypothesis: 0, tried, failedFor: noFailures, fleet: none, ignoreMemory: false });
    expect(p).toEqual({ kind: 'action', hypothesis: 1, diagnosis: 'infinite_loop', action: 'revoke_tools' });
  });

  it('reorders rungs by fleet-wide success but keeps the last resort last', () => {
    const stats: Record<string, OutcomeCounts> = {
      'infinite_loop:reduce_autonomy': { successes: 9, failures: 1 },
      'infinite_loop:revoke_tools': { successes: 0, failures: 6 },
      'infinite_loop:reset_agent': { successes: 50, failures: 0 },
    };
    const ladder = orderedLadder('infinite_loop', (d, a) => stats[`${d}:${a}`]);
    expect(ladder).toEqual(['reduce_autonomy', 'reset_memory', 'revoke_tools', 'reset_agent']);
  });
});
