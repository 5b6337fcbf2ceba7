import { count, duration, percent } from '../format';
import { STATUSES, type Stats, type Status } from '../types';
import { statusLabel } from './status';

interface Props {
  stats: Stats | null;
  /** Clicking a status count filters the agent grid to it. */
  onStatus: (s: Status) => void;
}

export function StatsPanel({ stats, onStatus }: Props) {
  if (!stats) return <p class="muted">Waiting for the first statistics…</p>;
  const cells: [string, string, string][] = [
    ['agents', 'Agents', count(stats.total_agents)],
    ['executions', 'Executions', count(stats.total_executions)],
    ['infections', 'Infections', count(stats.total_infections)],
    ['healed', 'Healed', count(stats.total_healed)],
    ['success', 'Success rate', percent(stats.success_rate)],
    ['runtime', 'Runtime', duration(stats.runtime_seconds)],
  ];
  return (
    <div>
      <div class="stats">
        {cells.map(([key, label, value]) => (
          <div class="stat" key={key} data-stat={key}>
            <div class="stat-label">{label}</div>
            <div class="stat-value">{value}</div>
          </div>
        ))}
      </div>
      <div class="stat-line">
        <span>
          {stats.current_quarantined} contained · {stats.pending_approvals} pending · {stats.failed_healings} failed healings · {stats.baselines_learned} baselines learned
        </span>
        <span class="by-status">
          {STATUSES.filter((s) => (stats.by_status[s] ?? 0) > 0).map((s) => (
            <button type="button" key={s} class={`chip st-${s}`} title={`Show only ${statusLabel(s)} agents`} onClick={() => onStatus(s)}>
              {statusLabel(s)} {stats.by_status[s]}
            </button>
          ))}
        </span>
      </div>
    </div>
  );
}
