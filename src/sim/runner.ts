import { CONTAINED_STATES } from '../domain/types.js';
import { parseVitals } from '../domain/vitals.js';
import type { ControlPlane } from '../control/control-plane.js';
import type { Logger } from '../log.js';
import type { SimAgent } from './agents.js';
import type { ChaosEntry } from './chaos.js';
import type { Random } from './random.js';

/** Drives the simulated fleet: one task per agent per tick, and the chaos schedule. Contained agents do not execute. */
export class SimRunner {
  private next = 0;
  readonly byId: ReadonlyMap<string, SimAgent>;

  constructor(
    readonly agents: readonly SimAgent[],
    private readonly schedule: readonly ChaosEntry[],
    private readonly rnd: Random,
    private readonly log: Logger,
    private readonly startedAt: number,
  ) {
    this.byId = new Map(agents.map((a) => [a.id, a]));
  }

  step(cp: ControlPlane, now: number): void {
    const elapsed = now - this.startedAt;
    while (this.next < this.schedule.length && this.schedule[this.next].at <= elapsed) {
      this.inject(this.schedule[this.next]);
      this.next += 1;
    }
    for (const a of this.agents) {
      const rt = cp.engine.get(a.id);
      if (rt && CONTAINED_STATES.has(rt.wf.state)) continue;
      cp.observe(parseVitals(a.execute(now, this.rnd), now), { source: 'simulated', mcp_servers: [...a.mcp_servers] });
    }
  }

  private inject(c: ChaosEntry): void {
    const agent = typeof c.agent === 'number' ? this.agents[c.agent % Math.max(1, this.agents.length)] : this.byId.get(c.agent);
    if (!agent) {
      this.log.warn({ agent: c.agent }, 'chaos: no such simulated agent');
      return;
    }
    agent.infect(c.infection, c.magnitude, this.rnd);
    this.log.info({ agent_id: agent.id, infection: c.infection, magnitude: c.magnitude }, `chaos: injected ${c.infection} (×${c.magnitude}) into ${agent.id}`);
  }
}
