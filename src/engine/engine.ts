import { ImmuneError } from '../domain/errors.js';
import type { AgentMeta, FleetIncident, ImmuneEvent, NewEvent } from '../domain/events.js';
import type { Actor, Diagnosis, DiagnosisType, HealingAction, HealTrigger, Infection, LifecycleState } from '../domain/types.js';
import type { Vitals } from '../domain/vitals.js';
import { effectiveSigma, isReady, learn, newBaseline, restoreBaseline, snapshotBaseline, type Baseline, type BaselineSnapshot } from './baseline.js';
import { engineConfig, type EngineConfig } from './config.js';
import { diagnose, externalCause } from './diagnose.js';
import { emptyList } from './empty-list.js';
import { keepLatest } from './latest-sample.js';
import { FleetCorrelator, groupsFor, newStanding, type Standing } from './fleet-correlator.js';
import { planNextAction } from './healing-policy.js';
import { ImmuneMemory } from './immune-memory.js';
import { addSample, newTally, probationDecision, type ProbationTally } from './probation.js';
import { applyEvent, newWorkflow, type Workflow } from './lifecycle.js';
import { CONTINUOUS, NC } from './metrics.js';
import { forgetCandidatePrompt, judge, looksNormal, SAMPLE_LOGS, newSentinelState, resetBystanderEvidence, resetEvidence, restoreSentinel, snapshotSentinel, type SentinelSnapshot, type SentinelState, type Verdict } from './sentinel.js';

/** Something the shell must do; the engine only decides. */
export type Effect = {
  type: 'execute_action';
  agent_id: string;
  attempt_id: string;
  action: HealingAction;
  diagnosis: DiagnosisType;
  trigger: HealTrigger;
};

/** What one input changed: the events appended (in order) and the effects to run. */
export interface Outcome {
  events: ImmuneEvent[];
  effects: Effect[];
}

export interface AgentRuntime {
  readonly id: string;
  meta: AgentMeta;
  baseline: Baseline;
  sentinel: SentinelState;
  wf: Workflow;
  last: Vitals | null;
  lastSeen: number;
  executions: number;
  /** Consecutive normal samples since probation began. */
  probationOk: number;
  /** Evidence gathered since the last healing action was applied (null outside probation). */
  probation?: ProbationTally | null;
  /** Set while a provider-type anomaly waits for peers to corroborate (fleet hold). */
  holdSince: number | null;
  /** When the agent last looked plainly normal (start of its current excursion): peers calm since then contradict an outage. */
  lastCalm: number;
  /** When the next healing step is due (pacing), or null. */
  stepAt: number | null;
  /** Its places in the fleet correlator's groups. */
  readonly standing: Standing;
}

export interface EngineSnapshot {
  seq: number;
  agents: Array<{ id: string; baseline: BaselineSnapshot; sentinel: SentinelSnapshot; executions: number; last_seen: number }>;
}

const SYSTEM: Actor = 'system';

/**
 * The immune pipeline for a whole fleet: baseline → sentinel → diagnosis →
 * lifecycle → healing plan. No I/O, no clock: time is the sample's timestamp
 * or the `now` a caller passes, so the same engine runs live, in tests and in
 * replay. Every state change is an event; `applyEvent` is the only writer of
 * workflow state, which is why a restart can rebuild it from the log.
 */
export class ImmuneEngine {
  readonly cfg: EngineConfig;
  readonly memory = new ImmuneMemory();
  private readonly agents = new Map<string, AgentRuntime>();
  private readonly fleet: FleetCorrelator;
  private readonly stepDue = new Set<string>();
  /** Agents held by the fleet hold, with the verdict that confirmed them: quarantined as soon as their peers contradict an outage. */
  private readonly held = new Map<string, Verdict>();
  private seq = 0;
  /** The outcome the next observe() fills (always empty between calls). */
  private scratch: Outcome = emptyOutcome();

  constructor(cfg: Partial<EngineConfig> = {}) {
    this.cfg = engineConfig(cfg);
    this.fleet = new FleetCorrelator(this.cfg);
  }

  // ───────────────────────────── queries ─────────────────────────────

  get(agentId: string): AgentRuntime | undefined {
    return this.agents.get(agentId);
  }

  /** The agent or a 404-style error for agent routes. */
  require(agentId: string): AgentRuntime {
    const rt = this.agents.get(agentId);
    if (!rt) throw new ImmuneError('IMM_ERR_UNKNOWN_AGENT', `unknown agent '${agentId}'`, { agent_id: agentId });
    return rt;
  }

  all(): IterableIterator<AgentRuntime> {
    return this.agents.values();
  }

  get size(): number {
    return this.agents.size;
  }

  get lastSeq(): number {
    return this.seq;
  }

  incidents(): FleetIncident[] {
    return this.fleet.incidents();
  }

  /** Deviation (σ, upward) of the agent's latest sample per continuous metric, for the detail view. */
  currentDeviations(agentId: string): Record<string, number> {
    const rt = this.require(agentId);
    const out: Record<string, number> = {};
    if (!rt.last || rt.baseline.n === 0) return out;
    for (let i = 0; i < NC; i++) {
      const y = Math.log1p(CONTINUOUS[i].read(rt.last));
      out[CONTINUOUS[i].key] = Math.round(((y - rt.baseline.mean[i]) / effectiveSigma(rt.baseline, i, this.cfg)) * 100) / 100;
    }
    return out;
  }

  // ───────────────────────────── inputs ─────────────────────────────

  /** Registers (or updates) an agent's metadata without a sample. */
  register(agentId: string, meta: Partial<AgentMeta>, now: number, actor: Actor = 'agent'): Outcome {
    const out = emptyOutcome();
    const rt = this.agents.get(agentId);
    if (!rt) {
      this.create(agentId, meta, now, actor, out);
    } else {
      const merged = mergeMeta(rt.meta, meta);
      if (JSON.stringify(merged) !== JSON.stringify(rt.meta)) this.emit(rt, { type: 'agent_registered', meta: merged, ts: now, actor, reason: 'metadata updated' }, out);
    }
    return out;
  }

  /** A sample arrives: learn, judge, and move the lifecycle. A sample that changes nothing returns a shared, frozen empty Outcome. */
  observe(v: Vitals, meta: Partial<AgentMeta> = NO_META): Outcome {
    // Most samples change nothing: they fill no outcome, so one is kept for the next sample instead of
    // allocating three objects per sample (replay judges 600k+ samples a second).
    let out = this.scratch;
    if (out.events.length > 0 || out.effects.length > 0) out = this.scratch = emptyOutcome(); // left by a sample that threw
    this.observeInto(v, meta, out);
    if (out.events.length === 0 && out.effects.length === 0) return NOTHING;
    this.scratch = emptyOutcome();
    return out;
  }

  private observeInto(v: Vitals, meta: Partial<AgentMeta>, out: Outcome): void {
    const now = v.timestamp;
    let rt = this.agents.get(v.agent_id);
    if (!rt) rt = this.create(v.agent_id, { ...meta, agent_type: v.agent_type, model: v.model, provider: v.provider, mcp_servers: v.mcp_servers }, now, 'agent', out);
    // A replay keeps the caller's record (nothing reads it there; the pipelined replay keeps one object per
    // agent, overwritten by its next record). Live, a copy, so the request's objects die young.
    rt.last = this.cfg.replayMode ? v : keepLatest(rt.last, v);
    rt.lastSeen = now;
    rt.executions += 1;
    // Through mergeMeta, so that every agent's metadata has one hidden class.
    if (v.model !== '' && rt.meta.model !== v.model) rt.meta = mergeMeta(rt.meta, { model: v.model });
    if (v.provider !== '' && rt.meta.provider !== v.provider) rt.meta = mergeMeta(rt.meta, { provider: v.provider });

    const b = rt.baseline;
    const state = rt.wf.state;
    // A deliberate model switch changes latency and cost legitimately: relearn rather than alarm.
    if ((state === 'healthy' || state === 'learning') && b.model !== '' && v.model !== '' && v.model !== b.model) {
      this.emit(rt, { type: 'baseline_reset', ts: now, actor: SYSTEM, reason: `model changed from ${b.model} to ${v.model}; relearning the baseline` }, out);
      rt.baseline = newBaseline();
      resetEvidence(rt.sentinel);
    }

    switch (rt.wf.state) {
      case 'learning':
        learn(rt.baseline, v, this.cfg);
        if (isReady(rt.baseline, this.cfg)) this.emit(rt, { type: 'baseline_ready', ts: now, actor: SYSTEM, reason: `learned from ${rt.baseline.n} samples` }, out);
        break;
      case 'healthy':
        this.judgeHealthy(rt, v, out);
        break;
      case 'probation':
        this.judgeProbation(rt, v, out);
        break;
      default:
        // Contained agents: the sample is recorded by the shell but neither judged nor learned.
        break;
    }
  }

  private judgeHealthy(rt: AgentRuntime, v: Vitals, out: Outcome): void {
    const now = v.timestamp;
    const verdict = judge(rt.baseline, rt.sentinel, v, this.cfg);
    const keys = groupsFor(rt.standing, rt.meta.model, rt.meta.provider);
    this.fleet.note(rt.standing, keys, now, verdict.providerSignal, verdict.strained, verdict.ownSignal);
    // What happens now and then (an infection, the fleet hold, a new prompt) is behind one call each, out
    // of the per-sample path: code that optimised code reaches for the first time makes V8 recompile the
    // whole inlined chain from the replay loop down (~30 ms of compiler time each, seven times a replay).
    if ((verdict.confirmed || this.held.size > 0) && this.settle(rt, verdict, keys, now, out)) return;
    rt.holdSince = null;
    if (!verdict.suspicious) rt.lastCalm = now;
    if (verdict.promptChanged) this.watchPrompt(rt, v, verdict, out);
    else forgetCandidatePrompt(rt.sentinel);
    if (verdict.learnWeight > 0 || verdict.rateLearnWeight > 0) learn(rt.baseline, v, this.cfg, this.cfg.thresholdSigma, verdict.learnWeight, verdict.rateLearnWeight, verdict.toolLearnWeight, SAMPLE_LOGS);
  }

  /** The fleet hold and a confirmed verdict; true when the sample is dealt with (an infection, or the fleet's). */
  private settle(rt: AgentRuntime, verdict: Verdict, keys: readonly string[], now: number, out: Outcome): boolean {
    if (this.held.size > 0) {
      this.held.delete(rt.id);
      if (!verdict.strained) this.releaseContradicted(keys, now, out);
    }
    if (!verdict.confirmed) return false;
    if (verdict.providerOnly && this.absorbedByFleet(rt, verdict, keys, now, out)) {
      if (rt.holdSince !== null && slowItself(verdict)) this.held.set(rt.id, verdict);
      return true;
    }
    rt.holdSince = null;
    this.infect(rt, verdict, now, out);
    return true;
  }

  /** True when the anomaly belongs to a provider incident (or is held waiting for peers) instead of this agent. */
  private absorbedByFleet(rt: AgentRuntime, verdict: Verdict, keys: readonly string[], now: number, out: Outcome): boolean {
    let incident = this.fleet.activeIncident(keys);
    if (!incident) {
      const a = this.fleet.assess(keys, now, rt.lastCalm);
      if (a?.qualifies) {
        incident = this.fleet.open(a.group, now, verdict.anomalies, verdict.maxDeviation);
        const dx = externalCause(rt.id, a.group, a.affected, a.active, this.cfg.fleetWindowSeconds);
        this.emitFleet({ type: 'fleet_incident_started', incident: { ...incident, agents: [...incident.agents] }, ts: now, actor: SYSTEM, reason: dx.hypotheses[0].reasoning }, out);
      } else if (a && a.active >= this.cfg.fleetMinAgents && (rt.holdSince === null || now - rt.holdSince <= this.cfg.fleetHoldSeconds) && !(slowItself(verdict) && this.fleet.peersContradict(keys, rt.id, rt.lastCalm, now))) {
        // Enough peers share this provider for an outage to show: wait briefly for them to corroborate
        // before blaming this agent. The first agent to confirm often has no corroboration yet — its
        // peers report less often — and quarantining it would blame it for the provider.
        rt.holdSince ??= now;
        return true;
      } else {
        return false;
      }
    }
    this.fleet.join(incident, rt.id, verdict.anomalies, verdict.maxDeviation);
    rt.holdSince = null;
    // A bystander: forget the evidence so it is judged afresh once the provider recovers, except fast
    // token/tool/cost evidence, so a fault of its own that starts during the outage is still caught.
    resetBystanderEvidence(rt.sentinel);
    return true;
  }

  /** Held agents whose peers (sharing a group with the calm sample's agent, `calmKeys`) now contradict an outage: they are sick on their own. */
  private releaseContradicted(calmKeys: readonly string[], now: number, out: Outcome): void {
    for (const [id, verdict] of this.held) {
      const rt = this.agents.get(id);
      if (!rt || rt.holdSince === null || rt.wf.state !== 'healthy') {
        this.held.delete(id);
        continue;
      }
      const keys = groupsFor(rt.standing, rt.meta.model, rt.meta.provider);
      // Only a calm peer in one of its groups can change the answer.
      if (!keys.some((k) => calmKeys.includes(k)) || !this.fleet.peersContradict(keys, id, rt.lastCalm, now)) continue;
      this.held.delete(id);
      rt.holdSince = null;
      this.infect(rt, verdict, now, out);
    }
  }

  /** A sample with an unadopted prompt: adopted after a run of otherwise normal samples; with abnormal behaviour it is part of the infection. */
  private watchPrompt(rt: AgentRuntime, v: Vitals, verdict: Verdict, out: Outcome): void {
    const s = rt.sentinel;
    if (s.candidatePrompt !== v.prompt_hash) {
      s.candidatePrompt = v.prompt_hash;
      s.candidateRun = 0;
    }
    // Only samples that are otherwise normal vouch for the new prompt.
    const otherwiseNormal = !verdict.confirmed && looksNormal(rt.sentinel, this.cfg);
    if (!otherwiseNormal) return;
    s.candidateRun += 1;
    if (s.candidateRun >= this.cfg.promptAdoptSamples) {
      const previous = rt.baseline.prompt_hash;
      rt.baseline.prompt_hash = v.prompt_hash;
      s.candidatePrompt = '';
      s.candidateRun = 0;
      this.emit(rt, { type: 'prompt_adopted', prompt_hash: v.prompt_hash, previous, ts: v.timestamp, actor: SYSTEM, reason: `new prompt behaved normally for ${this.cfg.promptAdoptSamples} samples` }, out);
    }
  }

  private infect(rt: AgentRuntime, verdict: Verdict, now: number, out: Outcome): void {
    const infection = toInfection(rt.id, now, verdict, this.cfg);
    const diagnosis = diagnose(infection, { ratios: verdict.ratios, corrections: this.memory.correctionsFor(rt.id) });
    const primary = diagnosis.hypotheses[0];
    this.emit(rt, { type: 'infection_detected', infection, diagnosis, ts: now, actor: SYSTEM, reason: `${infection.anomalies.join(', ')} at ${infection.max_deviation.toFixed(1)}σ; likely ${primary.diagnosis}` }, out);
    if (infection.severity === 'severe' && !this.cfg.autoApprove) {
      this.emit(rt, { type: 'approval_requested', ts: now, actor: SYSTEM, reason: `deviation ${infection.max_deviation.toFixed(1)}σ ≥ ${this.cfg.deviationRequiringApproval}σ needs a human decision` }, out);
      return;
    }
    this.emit(rt, { type: 'healing_started', trigger: 'auto', ts: now, actor: SYSTEM, reason: infection.severity === 'severe' ? 'severe, approved automatically by configuration' : `mild (${infection.max_deviation.toFixed(1)}σ): healing automatically` }, out);
    this.scheduleStep(rt, now, out);
  }

  private judgeProbation(rt: AgentRuntime, v: Vitals, out: Outcome): void {
    const now = v.timestamp;
    const verdict = judge(rt.baseline, rt.sentinel, v, this.cfg);
    // An agent being healed has trouble of its own: it is no witness for (or against) a provider outage.
    this.fleet.note(rt.standing, groupsFor(rt.standing, rt.meta.model, rt.meta.provider), now, verdict.providerSignal, verdict.strained, true);
    const attempt = rt.wf.attempt;
    if (verdict.confirmed && attempt) {
      if (this.cfg.replayMode) {
        // A recording cannot react to a cure: wait for it to turn normal on its own.
        resetEvidence(rt.sentinel);
        rt.probationOk = 0;
        rt.probation = null;
        return;
      }
      rt.probation = null;
      const infection = toInfection(rt.id, now, verdict, this.cfg);
      this.emit(rt, { type: 'probation_failed', attempt_id: attempt.attempt_id, action: attempt.action, diagnosis: attempt.diagnosis as DiagnosisType, infection, ts: now, actor: SYSTEM, reason: `still sick after ${attempt.action}: ${infection.anomalies.join(', ')} at ${infection.max_deviation.toFixed(1)}σ` }, out);
      resetEvidence(rt.sentinel);
      this.scheduleStep(rt, now, out);
      return;
    }
    const tally = (rt.probation ??= newTally());
    addSample(tally, rt.baseline, v, this.cfg);
    rt.probationOk = tally.n;
    if (!attempt) return;
    const decision = probationDecision(tally, rt.baseline, rt.wf.infection, this.cfg);
    if (decision.kind === 'wait') return;
    rt.probation = null;
    if (decision.kind === 'pass') {
      this.emit(rt, { type: 'probation_passed', attempt_id: attempt.attempt_id, action: attempt.action, diagnosis: attempt.diagnosis as DiagnosisType, ts: now, actor: SYSTEM, reason: `the metrics that were sick are back to normal after ${attempt.action} (${tally.n} samples)` }, out);
      resetEvidence(rt.sentinel);
      // The new prompt it carries was just judged normal: keeping it suspect would re-alarm on the same prompt forever.
      const previous = rt.baseline.prompt_hash;
      if (v.prompt_hash !== '' && previous !== '' && v.prompt_hash !== previous) {
        rt.baseline.prompt_hash = v.prompt_hash;
        this.emit(rt, { type: 'prompt_adopted', prompt_hash: v.prompt_hash, previous, ts: now, actor: SYSTEM, reason: `new prompt behaved normally in probation (${tally.n} samples)` }, out);
      }
      return;
    }
    if (this.cfg.replayMode) return; // a recording cannot react to a cure: keep watching
    const worst = Object.entries(decision.deviations).sort((a, b) => b[1] - a[1])[0];
    const infection: Infection = { ...(rt.wf.infection ?? toInfection(rt.id, now, verdict, this.cfg)), timestamp: now, deviations: decision.deviations, max_deviation: worst ? worst[1] : 0 };
    this.emit(rt, { type: 'probation_failed', attempt_id: attempt.attempt_id, action: attempt.action, diagnosis: attempt.diagnosis as DiagnosisType, infection, ts: now, actor: SYSTEM, reason: `still sick after ${attempt.action}: ${worst ? `${worst[0]} ${worst[1].toFixed(1)}σ above normal on average over ${tally.n} samples` : 'no improvement'}` }, out);
    resetEvidence(rt.sentinel);
    this.scheduleStep(rt, now, out);
  }

  /** The outcome of an action the shell executed (simulated agent, SDK directive ack, control URL). */
  actionResult(agentId: string, attemptId: string, ok: boolean, detail: string, now: number, actor: Actor = SYSTEM): Outcome {
    const rt = this.require(agentId);
    const attempt = rt.wf.attempt;
    if (rt.wf.state !== 'healing' || !attempt || attempt.attempt_id !== attemptId || attempt.applied_at !== undefined) {
      throw new ImmuneError('IMM_ERR_NOT_FOUND', `agent '${agentId}' has no healing action '${attemptId}' awaiting an outcome`, { agent_id: agentId, attempt_id: attemptId });
    }
    const out = emptyOutcome();
    const d = attempt.diagnosis as DiagnosisType;
    if (ok) {
      this.emit(rt, { type: 'action_applied', attempt_id: attemptId, action: attempt.action, diagnosis: d, detail, ts: now, actor, reason: `${attempt.action} applied; judging fresh vitals in probation` }, out);
      resetEvidence(rt.sentinel);
      rt.probationOk = 0;
      rt.probation = newTally();
    } else {
      this.emit(rt, { type: 'action_failed', attempt_id: attemptId, action: attempt.action, diagnosis: d, detail, ts: now, actor, reason: `${attempt.action} could not be applied: ${detail}` }, out);
      this.scheduleStep(rt, now, out);
    }
    return out;
  }

  /** Time-based work: paced healing steps and the end of quiet fleet incidents. */
  tick(now: number): Outcome {
    const out = emptyOutcome();
    for (const id of this.stepDue) {
      const rt = this.agents.get(id);
      if (!rt || rt.stepAt === null) {
        this.stepDue.delete(id);
        continue;
      }
      if (rt.stepAt <= now) {
        this.stepDue.delete(id);
        rt.stepAt = null;
        if (rt.wf.state === 'healing' && rt.wf.attempt === null) this.step(rt, now, out);
      }
    }
    for (const inc of this.fleet.closeQuiet(now)) {
      this.emitFleet({ type: 'fleet_incident_ended', incident: { ...inc, agents: [...inc.agents] }, ts: now, actor: SYSTEM, reason: `no provider-type trouble in ${inc.group} for ${this.cfg.fleetWindowSeconds} s` }, out);
    }
    return out;
  }

  // ─────────────────────────── operator commands ───────────────────────────

  approve(agentId: string, actor: Actor, now: number): Outcome {
    const rt = this.require(agentId);
    if (rt.wf.state !== 'pending_approval') throw notPending(agentId, rt.wf.state);
    const out = emptyOutcome();
    this.emit(rt, { type: 'approved', ts: now, actor, reason: 'healing approved' }, out);
    this.scheduleStep(rt, now, out);
    return out;
  }

  reject(agentId: string, actor: Actor, now: number): Outcome {
    const rt = this.require(agentId);
    if (rt.wf.state !== 'pending_approval') throw notPending(agentId, rt.wf.state);
    const out = emptyOutcome();
    this.emit(rt, { type: 'rejected', ts: now, actor, reason: 'healing rejected; the agent stays quarantined until "Heal now"' }, out);
    return out;
  }

  healNow(agentId: string, actor: Actor, now: number): Outcome {
    const rt = this.require(agentId);
    const s = rt.wf.state;
    if (s !== 'rejected' && s !== 'quarantined' && s !== 'exhausted') {
      throw new ImmuneError('IMM_ERR_NOT_REJECTED', `agent '${agentId}' is ${s}; "heal now" applies to rejected, quarantined or exhausted agents`, { agent_id: agentId, state: s });
    }
    const out = emptyOutcome();
    this.emit(rt, { type: 'heal_now', ts: now, actor, reason: s === 'exhausted' ? 'operator retries every ladder, ignoring remembered failures' : 'operator started healing' }, out);
    this.scheduleStep(rt, now, out);
    return out;
  }

  release(agentId: string, actor: Actor, now: number, reason = 'released by operator'): Outcome {
    const rt = this.require(agentId);
    const out = emptyOutcome();
    this.emit(rt, { type: 'released', ts: now, actor, reason }, out);
    this.cancelStep(rt);
    resetEvidence(rt.sentinel);
    return out;
  }

  quarantine(agentId: string, actor: Actor, now: number, reason = 'quarantined by operator'): Outcome {
    const rt = this.require(agentId);
    const out = emptyOutcome();
    this.emit(rt, { type: 'quarantined', ts: now, actor, reason }, out);
    this.cancelStep(rt);
    return out;
  }

  /** After a planned change (new prompt, new workload): the agent's current behaviour becomes normal once relearned. */
  acceptBaseline(agentId: string, actor: Actor, now: number, reason = 'operator accepted the new behaviour as baseline'): Outcome {
    const rt = this.require(agentId);
    const out = emptyOutcome();
    this.emit(rt, { type: 'baseline_accepted', ts: now, actor, reason }, out);
    this.cancelStep(rt);
    rt.baseline = newBaseline();
    resetEvidence(rt.sentinel);
    return out;
  }

  feedback(agentId: string, diagnosis: DiagnosisType, actor: Actor, now: number, reason = ''): Outcome {
    const rt = this.require(agentId);
    const out = emptyOutcome();
    const previous = rt.wf.diagnosis?.hypotheses[0]?.diagnosis ?? null;
    this.emit(rt, { type: 'diagnosis_feedback', diagnosis, previous, ts: now, actor, reason: reason || `operator says the cause is ${diagnosis}` }, out);
    return out;
  }

  // ───────────────────────────── healing ─────────────────────────────

  private scheduleStep(rt: AgentRuntime, now: number, out: Outcome): void {
    if (this.cfg.healingStepDelaySeconds <= 0) {
      this.step(rt, now, out);
      return;
    }
    rt.stepAt = now + this.cfg.healingStepDelaySeconds;
    this.stepDue.add(rt.id);
  }

  private cancelStep(rt: AgentRuntime): void {
    rt.stepAt = null;
    this.stepDue.delete(rt.id);
  }

  private step(rt: AgentRuntime, now: number, out: Outcome): void {
    const wf = rt.wf;
    const diagnoses: DiagnosisType[] = wf.diagnosis ? wf.diagnosis.hypotheses.map((h) => h.diagnosis).filter((d) => d !== 'external_cause') : ['unknown'];
    if (diagnoses.length === 0) diagnoses.push('unknown');
    const plan = planNextAction({
      diagnoses,
      fromHypothesis: Math.min(wf.hypothesis, diagnoses.length - 1),
      tried: new Set(wf.tried),
      failedFor: (d) => this.memory.failedActions(rt.id, d),
      fleet: (d, a) => this.memory.outcome(d, a),
      ignoreMemory: wf.ignore_memory,
    });
    if (plan.kind === 'exhausted') {
      this.emit(rt, { type: 'exhausted', ts: now, actor: SYSTEM, reason: `every action for ${diagnoses.join(', ')} failed or was tried; an operator is needed` }, out);
      return;
    }
    const attemptId = `${rt.id}:${this.seq + 1}`;
    const trigger = wf.trigger ?? 'auto';
    const skipped = plan.hypothesis > 0 && plan.hypothesis !== wf.hypothesis ? ` (ladder for ${diagnoses[plan.hypothesis - 1]} exhausted, trying next hypothesis)` : '';
    this.emit(rt, { type: 'action_started', attempt_id: attemptId, action: plan.action, diagnosis: plan.diagnosis, trigger, ts: now, actor: SYSTEM, reason: `${plan.action} for ${plan.diagnosis}${skipped}` }, out);
    out.effects.push({ type: 'execute_action', agent_id: rt.id, attempt_id: attemptId, action: plan.action, diagnosis: plan.diagnosis, trigger });
  }

  // ───────────────────────────── log ─────────────────────────────

  private create(agentId: string, meta: Partial<AgentMeta>, now: number, actor: Actor, out: Outcome): AgentRuntime {
    const rt = this.newRuntime(agentId, mergeMeta(undefined, meta), now);
    this.emit(rt, { type: 'agent_registered', meta: rt.meta, ts: now, actor, reason: actor === 'agent' ? 'first report' : 'registered' }, out);
    return rt;
  }

  /** A new agent's runtime, added to the fleet. One object literal for every agent: one hidden class on the per-sample path. */
  private newRuntime(agentId: string, meta: AgentMeta, now: number): AgentRuntime {
    const rt: AgentRuntime = {
      id: agentId,
      meta,
      baseline: newBaseline(),
      sentinel: newSentinelState(this.cfg),
      wf: newWorkflow(now),
      last: null,
      lastSeen: now,
      executions: 0,
      probationOk: 0,
      // Present from the start (not added on the first probation) so every runtime has one shape: a
      // field added later splits agents across two hidden classes and deoptimises the per-sample path.
      probation: null,
      holdSince: null,
      lastCalm: now,
      stepAt: null,
      standing: newStanding(agentId),
    };
    this.agents.set(agentId, rt);
    return rt;
  }

  private emit(rt: AgentRuntime, partial: DistributiveOmit<NewEvent, 'agent_id'>, out: Outcome): void {
    const e = { ...partial, agent_id: rt.id, seq: this.seq + 1 } as ImmuneEvent;
    applyEvent(rt.wf, e); // throws before anything is recorded if the lifecycle forbids it
    this.seq = e.seq;
    if (e.type === 'agent_registered') rt.meta = e.meta;
    this.memory.record(e);
    out.events.push(e);
  }

  private emitFleet(partial: DistributiveOmit<NewEvent, 'agent_id'> & { incident: FleetIncident }, out: Outcome): void {
    this.seq += 1;
    out.events.push({ ...partial, agent_id: `fleet:${partial.incident.group}`, seq: this.seq } as ImmuneEvent);
  }

  /**
   * Rebuilds workflow state, immune memory and open incidents from the log
   * (restart), then restores detection state from a snapshot. Events are not
   * re-emitted and no effects run.
   */
  restore(events: Iterable<ImmuneEvent>, snapshot?: EngineSnapshot): void {
    for (const e of events) {
      if (e.seq > this.seq) this.seq = e.seq;
      if (e.type === 'fleet_incident_started') {
        this.fleet.reopen({ ...e.incident, agents: [...e.incident.agents] });
        continue;
      }
      if (e.type === 'fleet_incident_ended') {
        this.fleet.close(e.incident.id);
        continue;
      }
      let rt = this.agents.get(e.agent_id);
      if (!rt) {
        if (e.type !== 'agent_registered') continue;
        rt = this.newRuntime(e.agent_id, e.meta, e.ts);
      }
      applyEvent(rt.wf, e);
      if (e.type === 'agent_registered') rt.meta = e.meta;
      if (e.type === 'baseline_accepted' || e.type === 'baseline_reset') rt.baseline = newBaseline();
      this.memory.record(e);
    }
    if (snapshot) {
      if (snapshot.seq > this.seq) this.seq = snapshot.seq;
      for (const a of snapshot.agents) {
        const rt = this.agents.get(a.id);
        if (!rt) continue;
        rt.baseline = restoreBaseline(a.baseline);
        rt.sentinel = restoreSentinel(a.sentinel, this.cfg);
        rt.executions = a.executions;
        rt.lastSeen = a.last_seen;
      }
    }
    // A healing step that was due (or an action whose outcome was lost) resumes: the step is retried.
    for (const rt of this.agents.values()) {
      if (rt.wf.state === 'healing' && rt.wf.attempt === null) {
        rt.stepAt = rt.lastSeen;
        this.stepDue.add(rt.id);
      }
    }
  }

  /** Actions started but not yet confirmed: the shell re-sends them after a restart. */
  inFlight(): Effect[] {
    const out: Effect[] = [];
    for (const rt of this.agents.values()) {
      const a = rt.wf.attempt;
      if (rt.wf.state === 'healing' && a && a.applied_at === undefined) {
        out.push({ type: 'execute_action', agent_id: rt.id, attempt_id: a.attempt_id, action: a.action, diagnosis: a.diagnosis as DiagnosisType, trigger: a.trigger });
      }
    }
    return out;
  }

  snapshot(): EngineSnapshot {
    const agents: EngineSnapshot['agents'] = [];
    for (const chunk of this.snapshotChunks(Infinity)) agents.push(...chunk);
    return { seq: this.seq, agents };
  }

  /**
   * Detection state in slices of `size` agents, so a shell can yield to the
   * event loop between slices (10,000 agents take ~200 ms in one go).
   */
  *snapshotChunks(size: number): Generator<EngineSnapshot['agents']> {
    let chunk: EngineSnapshot['agents'] = [];
    for (const rt of this.agents.values()) {
      chunk.push({ id: rt.id, baseline: snapshotBaseline(rt.baseline), sentinel: snapshotSentinel(rt.sentinel), executions: rt.executions, last_seen: rt.lastSeen });
      if (chunk.length >= size) {
        yield chunk;
        chunk = [];
      }
    }
    if (chunk.length > 0) yield chunk;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function emptyOutcome(): Outcome {
  return { events: emptyList(), effects: emptyList() };
}

/** observe()'s default metadata: shared, because a `= {}` default allocated an object per sample. */
const NO_META: Partial<AgentMeta> = Object.freeze({});

/** What observe() returns for a sample that changed nothing (frozen: it is shared). */
const NOTHING: Outcome = Object.freeze({ events: Object.freeze([]) as unknown as ImmuneEvent[], effects: Object.freeze([]) as unknown as Effect[] });

function notPending(agentId: string, state: LifecycleState): ImmuneError {
  return new ImmuneError('IMM_ERR_NOT_PENDING', `agent '${agentId}' is not awaiting approval (it is ${state})`, { agent_id: agentId, state });
}

function mergeMeta(prev: AgentMeta | undefined, m: Partial<AgentMeta>): AgentMeta {
  const pick = (a: string | undefined, b: string | undefined) => (a !== undefined && a !== '' ? a : (b ?? ''));
  const meta: AgentMeta = {
    agent_type: pick(m.agent_type, prev?.agent_type) || 'external',
    model: pick(m.model, prev?.model),
    provider: pick(m.provider, prev?.provider),
    mcp_servers: m.mcp_servers && m.mcp_servers.length > 0 ? [...m.mcp_servers] : (prev?.mcp_servers ?? []),
    source: m.source ?? prev?.source ?? 'external',
  };
  const control = m.control_url ?? prev?.control_url;
  if (control) meta.control_url = control;
  return meta;
}

/**
 * Only a slow agent can be told apart from a slow provider by its peers' latency. Retry and error
 * bursts come and go on their own (they are counts of rare events); the fleet hold's wait filters
 * them, so they keep it.
 */
function slowItself(v: Verdict): boolean {
  return v.anomalies.includes('latency_spike');
}

function toInfection(agentId: string, ts: number, v: Verdict, cfg: EngineConfig): Infection {
  return {
    agent_id: agentId,
    timestamp: ts,
    max_deviation: v.maxDeviation,
    anomalies: v.anomalies,
    deviations: v.deviations,
    severity: v.maxDeviation >= cfg.deviationRequiringApproval ? 'severe' : 'mild',
    evidence_samples: v.evidenceSamples,
  };
}

export type { Diagnosis };
