import type { ControlPlane } from '../control/control-plane.js';

const ORDER = ['learning', 'healthy', 'quarantined', 'pending_approval', 'healing', 'probation', 'rejected', 'exhausted'];

/** A compact terminal table of the fleet (agents listed when there are few of them). */
export function printStatus(cp: ControlPlane): void {
  const s = cp.stats();
  const counts = ORDER.filter((k) => s.by_status[k]).map((k) => `${k} ${s.by_status[k]}`).join(' · ');
  const lines = [
    `── fleet: ${s.total_agents} agents (${counts || 'none yet'}) · executions ${s.total_executions} · infections ${s.total_infections} · healed ${s.total_healed} · success ${(s.success_rate * 100).toFixed(0)}% · runtime ${Math.round(s.runtime_seconds)} s`,
  ];
  const agents = cp.agents();
  if (agents.length <= 30) {
    for (const a of agents) {
      const l = a.latest;
      const vit = l ? `${Math.round(l.latency)} ms ${l.tokens} tok ${l.tools} tools $${l.cost.toFixed(4)}` : '—';
      const dx = a.diagnosis ? ` ${a.diagnosis.diagnosis}` : '';
      const step = a.healing?.action ? ` → ${a.healing.action}` : '';
      lines.push(`   ${a.id.padEnd(16)} ${a.type.padEnd(12)} ${a.model.padEnd(18)} ${a.status.padEnd(17)} ${vit}${dx}${step}`);
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
}
