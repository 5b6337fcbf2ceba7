import { describe, expect, it } from 'vitest';
import type { ImmuneEvent, ImmuneEventType } from '../../src/domain/events.js';
import { ImmuneError } from '../../src/domain/errors.js';
import { LIFECYCLE_STATES, type LifecycleState } from '../../src/domain/types.js';
import { applyEvent, canTransition, newWorkflow, transition } from '../../src/engine/lifecycle.js';

/** The lifecycle of DESIGN §1, as a table: [from, event, to]. */
const LEGAL: Array<[LifecycleState, ImmuneEventType, LifecycleState]> = [
  ['learning', 'baseline_ready', 'healthy'],
  ['learning', 'quarantined', 'quarantined'],
  ['healthy', 'infection_detected', 'quarantined'],
  ['healthy', 'quarantined', 'quarantined'],
  ['healthy', 'baseline_reset', 'learning'],
  ['healthy', 'baseline_accepted', 'learning'],
  ['quarantined', 'approval_requested', 'pending_approval'],
  ['quarantined', 'healing_started', 'healing'],
  ['quarantined', 'heal_now', 'healing'],
  ['quarantined', 'released', 'healthy'],
  ['pending_approval', 'approved', 'healing'],
  ['pending_approval', 'rejected', 'rejected'],
  ['pending_approval', 'released', 'healthy'],
  ['rejected', 'heal_now', 'healing'],
  ['rejected', 'released', 'healthy'],
  ['healing', 'action_started', 'healing'],
  ['healing', 'action_failed', 'healing'],
  ['healing', 'action_applied', 'probation'],
  ['healing', 'exhausted', 'exhausted'],
  ['probation', 'probation_passed', 'healthy'],
  ['probation', 'probation_failed', 'healing'],
  ['exhausted', 'heal_now', 'healing'],
  ['exhausted', 'released', 'healthy'],
];

describe('lifecycle transition', () => {
  it.each(LEGAL)('%s --%s--> %s', (from, ev, to) => {
    expect(transition(from, ev)).toBe(to);
  });

  it('refuses what the lifecycle does not allow, with a 409', () => {
    const illegal: Array<[LifecycleState, ImmuneEventType]> = [
      ['learning', 'infection_detected'],
      ['healthy', 'approved'],
      ['healthy', 'probation_passed'],
      ['rejected', 'approved'],
      ['pending_approval', 'heal_now'],
      ['probation', 'approval_requested'],
      ['exhausted', 'action_started'],
      ['healing', 'infection_detected'],
      ['quarantined', 'rejected'],
    ];
    for (const [from, ev] of illegal) {
      expect(canTransition(from, ev)).toBe(false);
      try {
        transition(from, ev);
        throw new Error(`${from} → ${ev} was allowed`);
      } catch (e) {
        expect(e).toBeInstanceOf(ImmuneError);
        expect((e as ImmuneError).code).toBe('IMM_ERR_ILLEGAL_TRANSITION');
        expect((e as ImmuneError).status).toBe(409);
      }
    }
  });

  it('only approval and rejection leave pending_approval (besides release and feedback)', () => {
    const allowed = LEGAL.filter(([from]) => from === 'pending_approval').map(([, ev]) => ev).sort();
    expect(allowed).toEqual(['approved', 'rejected', 'released']);
    for (const s of LIFECYCLE_STATES) expect(canTransition(s, 'diagnosis_feedback')).toBe(true);
  });

  it('a refused event leaves the workflow untouched', () => {
    const w = newWorkflow(0);
    const before = JSON.stringify(w);
    const e = { seq: 1, ts: 5, agent_id: 'a', actor: 'operator', reason: '', type: 'approved' } as ImmuneEvent;
    expect(() => applyEvent(w, e)).toThrow(ImmuneError);
    expect(JSON.stringify(w)).toBe(before);
  });

  it('folds an episode: infection, approval, attempts, probation, healed', () => {
    const w = newWorkflow(0);
    const ev = (type: string, extra: object = {}, ts = 1) => applyEvent(w, { seq: 0, ts, agent_id: 'a', actor: 'system', reason: '', type, ...extra } as ImmuneEvent);
    ev('baseline_ready');
    const infection = { agent_id: 'a', timestamp: 2, max_deviation: 7, anomalies: ['tool_explosion'], deviations: { tools: 7 }, severity: 'severe' };
    ev('infection_detected', { infection, diagnosis: { agent_id: 'a', hypotheses: [{ diagnosis: 'infinite_loop', confidence: 0.9, reasoning: 'x' }] } }, 2);
    expect(w.state).toBe('quarantined');
    ev('approval_requested', {}, 2);
    ev('approved', { actor: 'operator' }, 3);
    expect(w.trigger).toBe('after_approval');
    ev('action_started', { attempt_id: 'a:1', action: 'revoke_tools', diagnosis: 'infinite_loop', trigger: 'after_approval' }, 4);
    ev('action_applied', { attempt_id: 'a:1', action: 'revoke_tools', diagnosis: 'infinite_loop', detail: '' }, 4);
    expect(w.state).toBe('probation');
    ev('probation_failed', { attempt_id: 'a:1', action: 'revoke_tools', diagnosis: 'infinite_loop', infection }, 5);
    expect(w.state).toBe('healing');
    expect(w.tried).toEqual(['revoke_tools']);
    ev('action_started', { attempt_id: 'a:2', action: 'reduce_autonomy', diagnosis: 'infinite_loop', trigger: 'after_approval' }, 6);
    ev('action_applied', { attempt_id: 'a:2', action: 'reduce_autonomy', diagnosis: 'infinite_loop', detail: '' }, 6);
    ev('probation_passed', { attempt_id: 'a:2', action: 'reduce_autonomy', diagnosis: 'infinite_loop' }, 9);
    expect(w.state).toBe('healthy');
    expect(w.infection).toBeNull();
    expect(w.tried).toEqual([]);
    expect(w.since).toBe(9);
  });
});
