import type { RefObject } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import { ControllerContext } from '../controller';
import { clock, count, percent, sigma, usd, words } from '../format';
import { memo } from '../hooks';
import type { AgentFilter, AgentSort } from '../state';
import { STATUSES, type AgentSummary, type Status } from '../types';
import { GAP, gridWindow, initialWindow, ROW_H, WINDOW_FROM, windowSlice, type GridWindow } from '../grid-window';
import { StatusBadge, statusLabel } from './status';

/** States from which "Heal now" is offered (API: rejected, quarantined or exhausted). */
export const HEALABLE: ReadonlySet<Status> = new Set(['rejected', 'quarantined', 'exhausted']);

/** The latest task's vitals: the only part of a card that changes on every task. */
const Latest = memo(function Latest({ v }: { v: AgentSummary['latest'] }) {
  if (!v) return <div class="vitals muted">no vitals yet</div>;
  return (
    <div class="vitals" title={`latest task at ${clock(v.timestamp)}`}>
      <span>{Math.round(v.latency)} ms</span>
      <span>{count(v.tokens)} tok</span>
      <span>{v.tools} tools</span>
      <span>{usd(v.cost)}</span>
      {v.retries > 0 && <span>{v.retries} retries</span>}
      {!v.success && <span class="err">{v.error_type || 'error'}</span>}
    </div>
  );
});

interface HeadProps {
  id: string;
  status: Status;
  type: string;
  model: string;
  external: boolean;
  mcp: string[];
  inIncident: boolean;
}

/**
 * Name, status, type, model, tags and MCP servers. Memoised on those values: with 1,000 agents
 * reporting every second, each visible card changes every second, but only in its vitals and
 * run count, so this part is skipped by the diff.
 */
const CardHead = memo(function CardHead({ id, status, type, model, external, mcp, inIncident }: HeadProps) {
  return (
    <>
      <header class="card-head">
        <a href={`#/agents/${encodeURIComponent(id)}`} class="agent-link" title="Open details">
          {id}
        </a>
        <StatusBadge status={status} />
      </header>
      <div class="card-meta">
        {type}
        {model && ` · ${model}`}
        {external && <span class="tag">external</span>}
        {inIncident && (
          <span class="tag incident" title="Part of an open provider incident: not quarantined">
            incident
          </span>
        )}
      </div>
      {mcp.length > 0 && <div class="mcp">{mcp.join(' · ')}</div>}
    </>
  );
});

/** The infection and healing lines of a contained card (their objects keep their identity across vitals updates). */
const CardFindings = memo(function CardFindings({ status, infection, diagnosis, healing }: Pick<AgentSummary, 'status' | 'infection' | 'diagnosis' | 'healing'>) {
  return (
    <>
      {infection && status !== 'healthy' && status !== 'learning' && (
        <div class="card-line" title={`${sigma(infection.max_deviation)} ${infection.anomalies.map(words).join(', ')}${diagnosis ? ` → ${words(diagnosis.diagnosis)}` : ''}`}>
          <strong class={`sev sev-${infection.severity}`}>{sigma(infection.max_deviation)}</strong> {infection.anomalies.map(words).join(', ')}
          {diagnosis && (
            <span class="muted">
              {' '}
              → {words(diagnosis.diagnosis)} {percent(diagnosis.confidence)}
            </span>
          )}
        </div>
      )}
      {healing && (status === 'healing' || status === 'probation') && (
        <div class="card-line">
          {healing.action ? words(healing.action) : 'next step'} · attempt {healing.attempt}
          {healing.trigger && ` · ${words(healing.trigger)}`}
        </div>
      )}
    </>
  );
});

interface CardProps {
  a: AgentSummary;
  busy: boolean;
  canAct: boolean;
  /** Part of an open fleet incident (provider trouble): deviating, deliberately not quarantined. */
  inIncident: boolean;
}

/** One agent. Memoised: re-renders only when its summary object or busy flag changes, and then mostly its vitals. */
export const AgentCard = memo(function AgentCard({ a, busy, canAct, inIncident }: CardProps) {
  const ctl = useContext(ControllerContext);
  return (
    <article class={`card st-border-${a.status}`} data-agent={a.id} data-status={a.status}>
      <CardHead id={a.id} status={a.status} type={a.type} model={a.model} external={a.source === 'external'} mcp={a.mcp_servers} inIncident={inIncident} />
      <Latest v={a.latest} />
      <CardFindings status={a.status} infection={a.infection} diagnosis={a.diagnosis} healing={a.healing} />
      <footer class="card-foot">
        <span class="muted">
          {count(a.executions)} runs · {a.status === 'learning' ? 'learning' : 'since'} {clock(a.since)}
        </span>
        {canAct && a.status === 'pending_approval' && (
          <span class="actions">
            <button type="button" class="btn ok sm" disabled={busy} onClick={() => ctl.act(a.id, 'approve')}>
              Approve
            </button>
            <button type="button" class="btn danger sm" disabled={busy} onClick={() => ctl.act(a.id, 'reject')}>
              Reject
            </button>
          </span>
        )}
        {canAct && HEALABLE.has(a.status) && (
          <span class="actions">
            <button type="button" class="btn primary sm" disabled={busy} onClick={() => ctl.act(a.id, 'heal')}>
              Heal now
            </button>
          </span>
        )}
      </footer>
    </article>
  );
});

interface FiltersProps {
  filter: AgentFilter;
  sort: AgentSort;
  types: string[];
  models: string[];
  shown: number;
  total: number;
  searchRef: RefObject<HTMLInputElement>;
  onChange: (f: AgentFilter) => void;
  onSort: (s: AgentSort) => void;
}

export function Filters({ filter, sort, types, models, shown, total, searchRef, onChange, onSort }: FiltersProps) {
  const set = (patch: Partial<AgentFilter>) => onChange({ ...filter, ...patch });
  const active = filter.q !== '' || filter.status !== '' || filter.type !== '' || filter.model !== '';
  return (
    <div class="filters" role="search">
      <input
        ref={searchRef}
        type="search"
        placeholder="Search id, type, model, MCP server  ( / )"
        aria-label="Search agents"
        value={filter.q}
        onInput={(e) => set({ q: e.currentTarget.value })}
      />
      <select aria-label="Status" value={filter.status} onChange={(e) => set({ status: e.currentTarget.value as Status | '' })}>
        <option value="">all statuses</option>
        {STATUSES.map((s) => (
          <option key={s} value={s}>
            {statusLabel(s)}
          </option>
        ))}
      </select>
      <select aria-label="Type" value={filter.type} onChange={(e) => set({ type: e.currentTarget.value })}>
        <option value="">all types</option>
        {types.map((t) => (
          <option key={t} value={t}>
            {t}
          </option>
        ))}
      </select>
      <select aria-label="Model" value={filter.model} onChange={(e) => set({ model: e.currentTarget.value })}>
        <option value="">all models</option>
        {models.map((m) => (
          <option key={m} value={m}>
            {m}
          </option>
        ))}
      </select>
      <select aria-label="Sort" value={sort} onChange={(e) => onSort(e.currentTarget.value as AgentSort)}>
        <option value="urgency">problems first</option>
        <option value="name">by name</option>
      </select>
      <span class="muted" data-shown={shown}>
        {shown === total ? `${total} agents` : `${shown} of ${total} agents`}
      </span>
      {active && (
        <button type="button" class="btn sm" onClick={() => onChange({ q: '', status: '', type: '', model: '' })}>
          Clear filters
        </button>
      )}
    </div>
  );
}

/**
 * The agent cards. Large fleets are windowed: only the rows near the viewport
 * exist in the DOM (measured: rendering all 1,000 cards made the first load
 * and every live update cost hundreds of milliseconds; see docs/BENCHMARKS.md).
 */
interface GridProps {
  agents: AgentSummary[];
  busy: Set<string>;
  canAct: boolean;
  /** Agents of open fleet incidents. */
  incidentAgents: Set<string>;
}

export function AgentGrid({ agents, busy, canAct, incidentAgents }: GridProps) {
  const ref = useRef<HTMLDivElement>(null);
  const [win, setWin] = useState<GridWindow>(() => initialWindow(innerWidth, innerHeight));
  const windowed = agents.length >= WINDOW_FROM;
  const frame = useRef(0);

  const measure = () => {
    frame.current = 0;
    const el = ref.current;
    if (!el) return;
    const r = el.getBoundingClientRect();
    const next = gridWindow(r.top, r.width, innerHeight);
    setWin((w) => (w.cols === next.cols && w.firstRow === next.firstRow && w.lastRow === next.lastRow ? w : next));
  };
  const schedule = () => {
    if (frame.current === 0) frame.current = requestAnimationFrame(measure);
  };

  useEffect(() => {
    if (!windowed) return;
    measure();
    addEventListener('scroll', schedule, { passive: true });
    addEventListener('resize', schedule);
    return () => {
      removeEventListener('scroll', schedule);
      removeEventListener('resize', schedule);
      cancelAnimationFrame(frame.current);
      frame.current = 0;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [windowed]);
  // Sections above the grid grow and shrink (pending approvals…): re-check the window after each render.
  useEffect(() => {
    if (windowed) schedule();
  });

  if (agents.length === 0) return <p class="muted empty">No agent matches.</p>;
  if (!windowed) {
    return (
      <div class="grid" data-list="agents" data-total={agents.length}>
        {agents.map((a) => (
          <AgentCard key={a.id} a={a} busy={busy.has(a.id)} canAct={canAct} inIncident={incidentAgents.has(a.id)} />
        ))}
      </div>
    );
  }
  const rows = Math.ceil(agents.length / win.cols);
  const { start, end } = windowSlice(win, agents.length);
  return (
    <div ref={ref} class="grid-scroller" data-list="agents" data-total={agents.length} style={{ height: `${rows * ROW_H - GAP}px` }}>
      <div class="grid" style={{ gridTemplateColumns: `repeat(${win.cols}, minmax(0, 1fr))`, transform: `translateY(${win.firstRow * ROW_H}px)` }}>
        {agents.slice(start, end).map((a) => (
          <AgentCard key={a.id} a={a} busy={busy.has(a.id)} canAct={canAct} inIncident={incidentAgents.has(a.id)} />
        ))}
      </div>
    </div>
  );
}
