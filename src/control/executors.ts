import { ImmuneError } from '../domain/errors.js';
import type { AgentRuntime, Effect } from '../engine/engine.js';
import type { SimAgent } from '../sim/agents.js';
import type { ActionExecutor, ControlPlane, Directive } from './control-plane.js';

/** Heals an in-process simulated agent. The outcome is "applied"; whether it cured is judged in probation. */
export class SimExecutor implements ActionExecutor {
  constructor(
    private readonly agents: ReadonlyMap<string, SimAgent>,
    private readonly cp: () => ControlPlane,
  ) {}

  execute(effect: Effect): void {
    const agent = this.agents.get(effect.agent_id);
    // Asynchronous like a real action, and so the engine finishes the current decision first.
    setImmediate(() => {
      if (!agent) {
        this.cp().completeAction(effect.agent_id, effect.attempt_id, false, 'simulated agent not found');
        return;
      }
      const { detail } = agent.apply(effect.action);
      try {
        this.cp().completeAction(effect.agent_id, effect.attempt_id, true, detail);
      } catch {
        // The operator released or re-quarantined the agent meanwhile; the outcome no longer matters.
      }
    });
  }
}

interface PendingDirective extends Directive {
  agent_id: string;
  issued_at: number;
}

/**
 * For agents without a control URL: the action is handed to the agent in its
 * next ingest answer (`directive`) and acknowledged through
 * POST /api/v1/agents/{id}/directives/{directive_id}/ack. If no
 * acknowledgement comes within the timeout, the step proceeds to probation
 * anyway: the agent's fresh vitals decide whether it is well.
 */
export class DirectiveExecutor implements ActionExecutor {
  private readonly pending = new Map<string, PendingDirective>();

  constructor(
    private readonly cp: () => ControlPlane,
    private readonly timeoutSeconds: number,
  ) {}

  execute(effect: Effect, rt: AgentRuntime): void {
    this.pending.set(rt.id, { id: effect.attempt_id, action: effect.action, diagnosis: effect.diagnosis, agent_id: rt.id, issued_at: this.cp().now() });
  }

  directiveFor(agentId: string): Directive | null {
    const d = this.pending.get(agentId);
    return d ? { id: d.id, action: d.action, diagnosis: d.diagnosis } : null;
  }

  /** The agent reports whether it applied the directive. Unknown or stale ids are a 404, not a silent success. */
  acknowledge(agentId: string, directiveId: string, ok: boolean, detail: string): void {
    const d = this.pending.get(agentId);
    if (!d || d.id !== directiveId) {
      throw new ImmuneError('IMM_ERR_NOT_FOUND', `agent '${agentId}' has no pending directive '${directiveId}'`, { agent_id: agentId, directive_id: directiveId });
    }
    this.pending.delete(agentId);
    this.cp().completeAction(agentId, directiveId, ok, detail || (ok ? 'applied by the agent' : 'the agent could not apply it'), 'agent');
  }

  tick(now: number): void {
    for (const [agentId, d] of this.pending) {
      if (now - d.issued_at < this.timeoutSeconds) continue;
      this.pending.delete(agentId);
      try {
        this.cp().completeAction(agentId, d.id, true, `no acknowledgement within ${this.timeoutSeconds} s; judging the agent on fresh vitals`);
      } catch {
        // Superseded by an operator action.
      }
    }
  }

  /** Drops a directive the operator made moot (release, re-quarantine). */
  forget(agentId: string): void {
    this.pending.delete(agentId);
  }
}
