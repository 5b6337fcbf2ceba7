import { memo } from '../hooks';
import { useContext } from 'preact/hooks';
import { ControllerContext } from '../controller';
import { clock, percent, sigma, words } from '../format';
import type { AgentSummary } from '../types';

/** The few largest per-metric deviations, "tools 7.4σ · latency 2.1σ". */
export function topDeviations(d: Record<string, number> | undefined, n = 4): string {
  if (!d) return '';
  return Object.entries(d)
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${words(k)} ${sigma(v)}`)
    .join(' · ');
}

function Evidence({ a }: { a: AgentSummary }) {
  const inf = a.infection;
  const dx = a.diagnosis;
  return (
    <div class="evidence">
      {inf && (
        <div>
          <strong class={`sev sev-${inf.severity}`}>{sigma(inf.max_deviation)}</strong> {inf.anomalies.map(words).join(', ')}
          <span class="muted"> — {topDeviations(inf.deviations)}</span>
        </div>
      )}
      {dx && (
        <div>
          Diagnosis: <strong>{words(dx.diagnosis)}</strong> ({percent(dx.confidence)}) <span class="muted">{dx.reasoning}</span>
        </div>
      )}
    </div>
  );
}

const PendingItem = memo(function PendingItem({ a, busy, canAct }: { a: AgentSummary; busy: boolean; canAct: boolean }) {
  const ctl = useContext(ControllerContext);
  return (
    <li class="item" data-agent={a.id}>
      <div class="item-head">
        <a href={`#/agents/${encodeURIComponent(a.id)}`} class="agent-link">
          {a.id}
        </a>
        <span class="muted">
          {a.type} · {a.model} · waiting since {clock(a.since)}
        </span>
        {canAct && (
          <span class="actions">
            <button type="button" class="btn ok" disabled={busy} onClick={() => ctl.act(a.id, 'approve')}>
              Approve
            </button>
            <button type="button" class="btn danger" disabled={busy} onClick={() => ctl.act(a.id, 'reject')}>
              Reject
            </button>
          </span>
        )}
      </div>
      <Evidence a={a} />
    </li>
  );
});

export function PendingList({ agents, busy, canAct }: { agents: AgentSummary[]; busy: Set<string>; canAct: boolean }) {
  if (agents.length === 0) return <p class="muted empty">No healing awaits approval.</p>;
  return (
    <ul class="items" data-list="pending">
      {agents.map((a) => (
        <PendingItem key={a.id} a={a} busy={busy.has(a.id)} canAct={canAct} />
      ))}
    </ul>
  );
}

const RejectedItem = memo(function RejectedItem({ a, busy, canAct }: { a: AgentSummary; busy: boolean; canAct: boolean }) {
  const ctl = useContext(ControllerContext);
  return (
    <li class="item" data-agent={a.id}>
      <div class="item-head">
        <a href={`#/agents/${encodeURIComponent(a.id)}`} class="agent-link">
          {a.id}
        </a>
        <span class="muted">
          {a.type} · {a.model} · rejected {clock(a.since)}
          {a.decided_by ? ` by ${a.decided_by}` : ''}
        </span>
        {canAct && (
          <span class="actions">
            <button type="button" class="btn primary" disabled={busy} onClick={() => ctl.act(a.id, 'heal')}>
              Heal now
            </button>
          </span>
        )}
      </div>
      <Evidence a={a} />
    </li>
  );
});

export function RejectedList({ agents, busy, canAct }: { agents: AgentSummary[]; busy: Set<string>; canAct: boolean }) {
  if (agents.length === 0) return <p class="muted empty">No rejected healings.</p>;
  return (
    <ul class="items" data-list="rejected">
      {agents.map((a) => (
        <RejectedItem key={a.id} a={a} busy={busy.has(a.id)} canAct={canAct} />
      ))}
    </ul>
  );
}
