import type { ComponentType } from 'preact';
import { useContext, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ControllerContext } from '../controller';
import { useSubscription } from '../hooks';
import { distinct, NO_FILTER, openIncidents, pendingOf, rejectedOf, visibleAgents, type AgentFilter, type AgentSort } from '../state';
import { AgentGrid, Filters } from './agent-grid';
import { PendingList, RejectedList } from './approvals';
import { Banners } from './banners';
import { Section } from './section';
import { StatsPanel } from './stats';
import { Patterns, Timeline } from './timeline';

/** Performance mark set once the first overview has been rendered and painted. */
export const FIRST_DATA_PAINT = 'immune:first-data-paint';

type DetailComponent = ComponentType<{ id: string; onClose: () => void }>;

/** "#/agents/<id>" → id; anything else → null. */
function routeAgent(): string | null {
  const m = /^#\/agents\/(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

let detailModule: Promise<DetailComponent> | null = null;
/** The detail view (and uPlot with it) loads on demand, keeping it out of the first paint. */
function loadDetail(): Promise<DetailComponent> {
  detailModule ??= import('./detail').then((m) => m.AgentDetailView);
  return detailModule;
}

export function App({ onLogout }: { onLogout: () => void }) {
  const ctl = useContext(ControllerContext);
  useSubscription(ctl.store);
  useSubscription(ctl);
  const state = ctl.store.get();
  const [filter, setFilter] = useState<AgentFilter>(NO_FILTER);
  const [sort, setSort] = useState<AgentSort>('urgency');
  const [detailId, setDetailId] = useState<string | null>(routeAgent);
  const [Detail, setDetail] = useState<DetailComponent | null>(null);
  const searchRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    const onHash = () => setDetailId(routeAgent());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    if (detailId !== null && Detail === null) void loadDetail().then((c) => setDetail(() => c));
  }, [detailId, Detail]);

  const loaded = ctl.store.loaded;
  useEffect(() => {
    if (!loaded) return;
    // Effects run after the browser painted: this mark is "the fleet is on screen" (bench/dashboard-load.ts reads it).
    if (performance.getEntriesByName(FIRST_DATA_PAINT).length === 0) performance.mark(FIRST_DATA_PAINT);
    // Then, once the page is idle, warm the detail chunk (uPlot) so opening an agent is instant,
    // without competing with the first paint for the CPU.
    const idle = (window as { requestIdleCallback?: (cb: () => void) => number }).requestIdleCallback ?? ((cb: () => void) => setTimeout(cb, 500));
    const t = setTimeout(() => idle(() => void loadDetail()), 1000);
    return () => clearTimeout(t);
  }, [loaded]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement || e.target instanceof HTMLTextAreaElement;
      if (e.key === '/' && !typing) {
        e.preventDefault();
        searchRef.current?.focus();
      } else if (e.key === 'Escape') {
        if (routeAgent() !== null) location.hash = '';
        else if (typing && e.target === searchRef.current) setFilter((f) => ({ ...f, q: '' }));
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);

  const agents = state.agents;
  const pending = useMemo(() => pendingOf(agents), [agents]);
  const rejected = useMemo(() => rejectedOf(agents), [agents]);
  const types = useMemo(() => distinct(agents, (a) => a.type), [agents]);
  const models = useMemo(() => distinct(agents, (a) => a.model), [agents]);
  const shown = useMemo(() => visibleAgents(agents, filter, sort), [agents, filter, sort]);
  const incidents = useMemo(() => openIncidents(state.incidents), [state.incidents]);
  const incidentAgents = useMemo(() => new Set(incidents.flatMap((i) => i.agents)), [incidents]);
  const canAct = ctl.canAct;
  const busy = ctl.busy;

  return (
    <div class="page">
      <header class="top">
        <h1>Agent Immune</h1>
        <span class={`conn conn-${ctl.store.connection}`} data-connection={ctl.store.connection} title="Live update stream">
          {ctl.store.connection === 'live' ? '● live' : ctl.store.connection === 'connecting' ? '○ connecting' : '○ reconnecting'}
        </span>
        <span class="spacer" />
        <span class="role" data-role={ctl.role}>
          {ctl.role === 'viewer' ? 'viewer (read-only)' : 'operator'}
        </span>
        <button type="button" class="btn sm ghost" onClick={onLogout}>
          Sign out
        </button>
      </header>
      <Banners store={state.store} incidents={incidents} connection={ctl.store.connection} />
      {!ctl.store.loaded ? (
        <p class="loading" role="status">
          Loading the fleet…{ctl.store.loadError && ` (last attempt failed: ${ctl.store.loadError}; retrying)`}
        </p>
      ) : (
        <>
          <Section id="stats" title="Fleet">
            <StatsPanel stats={state.stats} onStatus={(s) => setFilter({ ...NO_FILTER, status: s })} />
          </Section>
          <div class="two">
            <Section
              id="pending"
              title="Pending approvals"
              badge={pending.length}
              tools={
                canAct &&
                pending.length > 0 && (
                  <>
                    <button type="button" class="btn ok sm" disabled={busy.has('bulk:approve')} onClick={() => ctl.approveAll()}>
                      Approve all
                    </button>
                    <button type="button" class="btn danger sm" disabled={busy.has('bulk:reject')} onClick={() => ctl.rejectAll()}>
                      Reject all
                    </button>
                  </>
                )
              }
            >
              <PendingList agents={pending} busy={busy} canAct={canAct} />
            </Section>
            <Section
              id="rejected"
              title="Rejected healings"
              badge={rejected.length}
              tools={
                canAct &&
                rejected.length > 0 && (
                  <button type="button" class="btn primary sm" disabled={busy.has('bulk:heal')} onClick={() => ctl.healAll()}>
                    Heal all
                  </button>
                )
              }
            >
              <RejectedList agents={rejected} busy={busy} canAct={canAct} />
            </Section>
          </div>
          <Section id="agents" title="Agents" badge={agents.length}>
            <Filters
              filter={filter}
              sort={sort}
              types={types}
              models={models}
              shown={shown.length}
              total={agents.length}
              searchRef={searchRef}
              onChange={setFilter}
              onSort={setSort}
            />
            <AgentGrid agents={shown} busy={busy} canAct={canAct} incidentAgents={incidentAgents} />
          </Section>
          <div class="two">
            <Section id="timeline" title="Recent healing actions" badge={state.healings.length}>
              <Timeline entries={state.healings} />
            </Section>
            <Section id="patterns" title="Learned healing patterns" badge={state.patterns.length}>
              <Patterns patterns={state.patterns} />
            </Section>
          </div>
        </>
      )}
      {detailId !== null && (Detail ? <Detail id={detailId} onClose={() => (location.hash = '')} /> : <div class="drawer">Loading…</div>)}
      <div class="toasts" role="status" aria-live="polite">
        {ctl.toasts.map((t) => (
          <div key={t.id} class={`toast toast-${t.kind}`} data-toast={t.kind}>
            {t.text}
            <button type="button" class="x" aria-label="Dismiss" onClick={() => ctl.dismiss(t.id)}>
              ×
            </button>
          </div>
        ))}
      </div>
    </div>
  );
}
