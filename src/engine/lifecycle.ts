import { ImmuneError } from '../domain/errors.js';
import type { ImmuneEvent, ImmuneEventType } from '../domain/events.js';
import type { Diagnosis, HealingAction, HealTrigger, Infection, LifecycleState, Severity } from '../domain/types.js';

/** Where each event may happen and where it leads. `null` target = state unchanged. Anything not listed is illegal. */
const TRANSITIONS: Partial<Record<ImmuneEventType, { from: readonly LifecycleState[] | 'any'; to: LifecycleState | null }>> = {
  agent_registered: { from: 'any', to: null },
  baseline_ready: { from: ['learning'], to: 'healthy' },
  baseline_reset: { from: ['learning', 'healthy'], to: 'learning' },
  baseline_accepted: { from: 'any', to: 'learning' },
  prompt_adopted: { from: ['healthy', 'probation'], to: null },
  infection_detected: { from: ['healthy'], to: 'quarantined' },
  approval_requested: { from: ['quarantined'], to: 'pending_approval' },
  approved: { from: ['pending_approval'], to: 'healing' },
  rejected: { from: ['pending_approval'], to: 'rejected' },
  heal_now: { from: ['rejected', 'quarantined', 'exhausted'], to: 'healing' },
  healing_started: { from: ['quarantined'], to: 'healing' },
  action_started: { from: ['healing'], to: null },
  action_applied: { from: ['healing'], to: 'probation' },
  action_failed: { from: ['healing'], to: null },
  probation_passed: { from: ['probation'], to: 'healthy' },
  probation_failed: { from: ['probation'], to: 'healing' },
  exhausted: { from: ['healing'], to: 'exhausted' },
  quarantined: { from: ['learning', 'healthy', 'probation', 'healing'], to: 'quarantined' },
  released: { from: ['quarantined', 'pending_approval', 'rejected', 'exhausted', 'healing', 'probation'], to: 'healthy' },
  diagnosis_feedback: { from: 'any', to: null },
};

/** The lifecycle state an event leads to from `state`; throws IMM_ERR_ILLEGAL_TRANSITION when the lifecycle forbids it. */
export function transition(state: LifecycleState, type: ImmuneEventType): LifecycleState {
  const rule = TRANSITIONS[type];
  if (!rule || (rule.from !== 'any' && !rule.from.includes(state))) {
    throw new ImmuneError('IMM_ERR_ILLEGAL_TRANSITION', `cannot apply '${type}' to an agent that is ${state}`, { state, event: type });
  }
  return rule.to ?? state;
}

export function canTransition(state: LifecycleState, type: ImmuneEventType): boolean {
  const rule = TRANSITIONS[type];
  return !!rule && (rule.from === 'any' || rule.from.includes(state));
}

export interface Attempt {
  attempt_id: string;
  action: HealingAction;
  diagnosis: string;
  trigger: HealTrigger;
  started_at: number;
  applied_at?: number;
}

/** One agent's workflow: the fold of its events. */
export interface Workflow {
  state: LifecycleState;
  since: number;
  infection: Infection | null;
  diagnosis: Diagnosis | null;
  severity: Severity | null;
  trigger: HealTrigger | null;
  /** Index of the hypothesis whose ladder is being climbed. */
  hypothesis: number;
  /** Actions tried in this episode. */
  tried: HealingAction[];
  attempt: Attempt | null;
  /** Number of attempts in this episode (for deterministic attempt ids). */
  attempts: number;
  /** Who made the last approval decision. */
  decided_by: string | null;
  /** Set by heal-now on an exhausted agent: climb the ladders again without skipping remembered failures. */
  ignore_memory: boolean;
}

export function newWorkflow(ts = 0): Workflow {
  return { state: 'learning', since: ts, infection: null, diagnosis: null, severity: null, trigger: null, hypothesis: 0, tried: [], attempt: null, attempts: 0, decided_by: null, ignore_memory: false };
}

function endEpisode(w: Workflow): void {
  w.infection = null;
  w.diagnosis = null;
  w.severity = null;
  w.trigger = null;
  w.hypothesis = 0;
  w.tried = [];
  w.attempt = null;
  w.attempts = 0;
  w.ignore_memory = false;
}

/** Applies one event to a workflow in place (validating the transition first, so a refused event changes nothing). */
export function applyEvent(w: Workflow, e: ImmuneEvent): void {
  const next = transition(w.state, e.type);
  switch (e.type) {
    case 'infection_detected':
      endEpisode(w);
      w.infection = e.infection;
      w.diagnosis = e.diagnosis;
      w.severity = e.infection.severity;
      w.decided_by = null;
      break;
    case 'quarantined':
      if (w.state === 'healthy' || w.state === 'learning') endEpisode(w);
      w.attempt = null;
      break;
    case 'approved':
      w.trigger = 'after_approval';
      w.decided_by = e.actor;
      break;
    case 'rejected':
      w.decided_by = e.actor;
      break;
    case 'heal_now':
      w.trigger = 'heal_now';
      w.decided_by = e.actor;
      if (w.state === 'exhausted') {
        w.ignore_memory = true;
        w.tried = [];
        w.hypothesis = 0;
      }
      break;
    case 'healing_started':
      w.trigger = e.trigger;
      break;
    case 'action_started': {
      w.attempts += 1;
      w.tried.push(e.action);
      const h = w.diagnosis?.hypotheses.findIndex((x) => x.diagnosis === e.diagnosis) ?? -1;
      if (h >= 0) w.hypothesis = h;
      w.attempt = { attempt_id: e.attempt_id, action: e.action, diagnosis: e.diagnosis, trigger: e.trigger, started_at: e.ts };
      break;
    }
    case 'action_applied':
      if (w.attempt) w.attempt.applied_at = e.ts;
      break;
    case 'action_failed':
    case 'probation_failed':
      w.attempt = null;
      if (e.type === 'probation_failed') w.infection = e.infection;
      break;
    case 'diagnosis_feedback':
      if (w.diagnosis) {
        const rest = w.diagnosis.hypotheses.filter((h) => h.diagnosis !== e.diagnosis);
        w.diagnosis = {
          agent_id: w.diagnosis.agent_id,
          hypotheses: [{ diagnosis: e.diagnosis, confidence: 1, reasoning: `Set by ${e.actor}: ${e.reason || 'operator feedback'}` }, ...rest],
        };
        w.hypothesis = 0;
      }
      break;
    case 'probation_passed':
    case 'released':
    case 'baseline_accepted':
    case 'baseline_reset':
      endEpisode(w);
      break;
    default:
      break;
  }
  if (next !== w.state) {
    w.state = next;
    w.since = e.ts;
  }
}
