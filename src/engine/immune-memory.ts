import type { ImmuneEvent } from '../domain/events.js';
import type { DiagnosisType, HealingAction } from '../domain/types.js';
import { successRate, type OutcomeCounts } from './healing-policy.js';

/**
 * What healing has taught: per (agent, diagnosis) the actions that failed,
 * fleet-wide outcome counts per (diagnosis, action), and operator corrections
 * of diagnoses. Derived entirely from the event log (see `record`).
 */
export class ImmuneMemory {
  private readonly failed = new Map<string, Set<HealingAction>>();
  private readonly fleet = new Map<string, OutcomeCounts>();
  private readonly corrections = new Map<string, Map<DiagnosisType, Map<DiagnosisType, number>>>();

  /** Folds one log event into memory; events that teach nothing are ignored. */
  record(e: ImmuneEvent): void {
    switch (e.type) {
      case 'action_failed':
      case 'probation_failed':
        this.markFailed(e.agent_id, e.diagnosis, e.action);
        this.count(e.diagnosis, e.action, false);
        break;
      case 'probation_passed':
        // A cure that works now (e.g. after an operator override) is no longer remembered as failed.
        this.failed.get(`${e.agent_id}\u0000${e.diagnosis}`)?.delete(e.action);
        this.count(e.diagnosis, e.action, true);
        break;
      case 'diagnosis_feedback':
        if (e.previous && e.previous !== e.diagnosis) {
          let byWrong = this.corrections.get(e.agent_id);
          if (!byWrong) this.corrections.set(e.agent_id, (byWrong = new Map()));
          let counts = byWrong.get(e.previous);
          if (!counts) byWrong.set(e.previous, (counts = new Map()));
          counts.set(e.diagnosis, (counts.get(e.diagnosis) ?? 0) + 1);
        }
        break;
      default:
        break;
    }
  }

  failedActions(agentId: string, diagnosis: DiagnosisType): ReadonlySet<HealingAction> {
    return this.failed.get(`${agentId}\u0000${diagnosis}`) ?? EMPTY;
  }

  outcome(diagnosis: DiagnosisType, action: HealingAction): OutcomeCounts | undefined {
    return this.fleet.get(`${diagnosis}\u0000${action}`);
  }

  correctionsFor(agentId: string): ReadonlyMap<DiagnosisType, ReadonlyMap<DiagnosisType, number>> | undefined {
    return this.corrections.get(agentId);
  }

  /** "Learned healing patterns": per diagnosis, actions ranked by fleet success. */
  patterns(): Array<{ diagnosis: DiagnosisType; action: HealingAction; successes: number; failures: number; success_rate: number }> {
    const out = [];
    for (const [key, c] of this.fleet) {
      const [diagnosis, action] = key.split('\u0000') as [DiagnosisType, HealingAction];
      out.push({ diagnosis, action, successes: c.successes, failures: c.failures, success_rate: c.successes / Math.max(1, c.successes + c.failures) });
    }
    return out.sort((a, b) => a.diagnosis.localeCompare(b.diagnosis) || successRate(b) - successRate(a));
  }

  /** Total attempts and successes across the fleet. */
  totals(): { attempts: number; successes: number } {
    let attempts = 0;
    let successes = 0;
    for (const c of this.fleet.values()) {
      attempts += c.successes + c.failures;
      successes += c.successes;
    }
    return { attempts, successes };
  }

  private markFailed(agentId: string, diagnosis: DiagnosisType, action: HealingAction): void {
    const key = `${agentId}\u0000${diagnosis}`;
    let s = this.failed.get(key);
    if (!s) this.failed.set(key, (s = new Set()));
    s.add(action);
  }

  private count(diagnosis: DiagnosisType, action: HealingAction, ok: boolean): void {
    const key = `${diagnosis}\u0000${action}`;
    let c = this.fleet.get(key);
    if (!c) this.fleet.set(key, (c = { successes: 0, failures: 0 }));
    if (ok) c.successes++;
    else c.failures++;
  }
}

const EMPTY: ReadonlySet<HealingAction> = new Set();
