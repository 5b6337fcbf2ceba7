import { describe, expect, it } from 'vitest';
import type { ImmuneEvent } from '../../src/domain/events.js';
import { approvalsIn, failedActions, healingTotals, latestApprovals, patternSummary, recentActions, seedRowsFromEvents } from '../../src/store/seed-views.js';

let seq = 0;
const e = (agent: string, ts: number, body: Record<string, unknown>): ImmuneEvent => ({ seq: ++seq, ts, agent_id: agent, actor: 'system', reason: `r${seq}`, ...body }) as ImmuneEvent;
const infected = (agent: string, ts: number, sigma: number) =>
  e(agent, ts, {
    type: 'infection_detected',
    infection: { agent_id: agent, timestamp: ts, max_deviation: sigma, anomalies: ['token_spike'], deviations: { tokens: sigma }, severity: sigma >= 5 ? 'severe' : 'mild' },
    diagnosis: { agent_id: agent, hypotheses: [{ diagnosis: 'prompt_injection', confidence: 0.8, reasoning: 'tokens up' }] },
  });
const attempt = (agent: string, ts: number, id: string, action: string, trigger = 'auto') => e(agent, ts, { type: 'action_started', attempt_id: id, action, diagnosis: 'prompt_injection', trigger });

describe('seed views over the event log', () => {
  it('lists pending and rejected approvals with the infection behind them, and drops them when decided or released', () => {
    const log = [
      infected('a', 10, 7.26),
      e('a', 10, { type: 'approval_requested' }),
      infected('b', 11, 6),
      e('b', 11, { type: 'approval_requested' }),
      e('b', 12, { type: 'rejected', actor: 'operator:ann' }),
      infected('c', 13, 9),
      e('c', 13, { type: 'approval_requested' }),
      e('c', 14, { type: 'released', actor: 'operator:ann' }),
    ];
    const rows = seedRowsFromEvents(log);
    expect(approvalsIn(rows, 'pending')).toEqual([{ agent_id: 'a', severity: 7.3, anomalies: ['token_spike'], diagnosis_type: 'prompt_injection', reasoning: 'tokens up', requested_at: 10 }]);
    expect(approvalsIn(rows, 'rejected')).toEqual([{ agent_id: 'b', severity: 6, anomalies: ['token_spike'], diagnosis_type: 'prompt_injection', reasoning: 'tokens up', rejected_at: 12 }]);
    expect(latestApprovals(rows).c.decision).toBe('released');
    const healed = seedRowsFromEvents([...log, e('b', 15, { type: 'heal_now', actor: 'operator:ann' })]);
    expect(approvalsIn(healed, 'rejected')).toEqual([]);
    expect(latestApprovals(healed).b.decision).toBe('heal_now');
  });

  it('turns attempt outcomes into one healing event each and remembers failures until a cure works', () => {
    const log = [
      infected('a', 1, 3),
      attempt('a', 2, 'a:1', 'reset_memory', 'after_approval'),
      e('a', 3, { type: 'action_failed', attempt_id: 'a:1', action: 'reset_memory', diagnosis: 'prompt_injection', detail: 'unreachable' }),
      attempt('a', 4, 'a:2', 'rollback_prompt'),
      e('a', 5, { type: 'action_applied', attempt_id: 'a:2', action: 'rollback_prompt', diagnosis: 'prompt_injection', detail: '' }),
      e('a', 6, { type: 'probation_failed', attempt_id: 'a:2', action: 'rollback_prompt', diagnosis: 'prompt_injection', infection: { agent_id: 'a', timestamp: 6, max_deviation: 4, anomalies: [], deviations: {}, severity: 'mild' } }),
      attempt('a', 7, 'a:3', 'reset_memory', 'heal_now'),
      e('a', 8, { type: 'action_applied', attempt_id: 'a:3', action: 'reset_memory', diagnosis: 'prompt_injection', detail: '' }),
      e('a', 9, { type: 'probation_passed', attempt_id: 'a:3', action: 'reset_memory', diagnosis: 'prompt_injection' }),
    ];
    const rows = seedRowsFromEvents(log);
    const healing = rows.filter((r) => r.measurement === 'healing_event');
    expect(healing.map((r) => [r.fields.healing_action, r.fields.success, r.fields.validation_passed, r.fields.trigger])).toEqual([
      ['reset_memory', false, false, 'after_approval'],
      ['rollback_prompt', true, false, 'auto'],
      ['reset_memory', true, true, 'heal_now'],
    ]);
    expect(failedActions(rows, 'a', 'prompt_injection')).toEqual(['rollback_prompt']);
    expect(healingTotals(rows)).toEqual({ total: 3, rate: 1 / 3 });
    expect(patternSummary(rows)).toEqual({ prompt_injection: { best_action: 'reset_memory', success_count: 1 } });
    const q = rows.filter((r) => r.measurement === 'quarantine_event').map((r) => [r.fields.action, r.fields.duration_s]);
    expect(q).toEqual([
      ['quarantine', null],
      ['release', 8],
    ]);
  });

  it('puts every event in the action log, newest N oldest first', () => {
    const log = [infected('a', 1, 3), attempt('a', 2, 'a:1', 'reset_memory'), e('a', 3, { type: 'released' })];
    const recent = recentActions(seedRowsFromEvents(log), 2);
    expect(recent.map((r) => r.type)).toEqual(['action_started', 'released']);
    expect(recent[0]).toMatchObject({ agent_id: 'a', action: 'reset_memory', diagnosis_type: 'prompt_injection', trigger: 'auto', timestamp: 2 });
  });
});
