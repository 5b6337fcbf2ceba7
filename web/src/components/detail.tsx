import { useContext, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { ControllerContext } from '../controller';
import { clock, count, percent, sigma, usd, words } from '../format';
import { useSubscription } from '../hooks';
import type { AgentDetail, AgentSummary, ImmuneEvent, Status, Vitals } from '../types';
import { HEALABLE } from './agent-grid';
import { StatusBadge } from './status';
import { bandOf, markersOf, vitalsOfLatest, withGaps } from '../vitals-series';
import { VitalChart } from './vital-chart';

interface VitalSpec {
  /** Key in `baseline` and `deviations`. */
  key: string;
  title: string;
  read: (v: Vitals) => number;
  format: (x: number) => string;
  /** The y axis reaches at least this high, so a flat 0 line of a count reads as "none", not as noise. */
  minTop?: number;
}

const num = (x: number) => (Math.abs(x) >= 1e4 ? count(Math.round(x)) : String(Math.round(x * 10) / 10));

const VITALS: readonly VitalSpec[] = [
  { key: 'latency', title: 'Latency (ms)', read: (v) => v.latency_ms, format: num },
  { key: 'tokens', title: 'Total tokens', read: (v) => v.token_count, format: num },
  { key: 'input_tokens', title: 'Input tokens', read: (v) => v.input_tokens, format: num },
  { key: 'output_tokens', title: 'Output tokens', read: (v) => v.output_tokens, format: num },
  { key: 'cost', title: 'Cost (USD)', read: (v) => v.cost, format: (x) => usd(x) },
  { key: 'tools', title: 'Tool calls', read: (v) => v.tool_calls, format: num, minTop: 1 },
  { key: 'retry_rate', title: 'Retries', read: (v) => v.retries, format: num, minTop: 1 },
  { key: 'error_rate', title: 'Errors (1 = failed task)', read: (v) => (v.success && v.error_type === '' ? 0 : 1), format: num, minTop: 1 },
];

export const DIAGNOSES = ['prompt_drift', 'prompt_injection', 'infinite_loop', 'tool_instability', 'memory_corruption', 'cost_overrun', 'external_cause', 'unknown'] as const;

const CONTAINED: ReadonlySet<Status> = new Set(['quarantined', 'pending_approval', 'healing', 'rejected', 'exhausted']);

function Actions({ a }: { a: AgentSummary }) {
  const ctl = useContext(ControllerContext);
  const [reason, setReason] = useState('');
  const [dx, setDx] = useState<string>(DIAGNOSES[0]);
  const [note, setNote] = useState('');
  const busy = ctl.busy.has(a.id);
  const why = reason.trim() || undefined;
  return (
    <div class="detail-actions">
      <div class="row">
        {a.status === 'pending_approval' && (
          <>
            <button type="button" class="btn ok" disabled={busy} onClick={() => ctl.act(a.id, 'approve')}>
              Approve healing
            </button>
            <button type="button" class="btn danger" disabled={busy} onClick={() => ctl.act(a.id, 'reject')}>
              Reject
            </button>
          </>
        )}
        {HEALABLE.has(a.status) && (
          <button type="button" class="btn primary" disabled={busy} onClick={() => ctl.act(a.id, 'heal')}>
            Heal now
          </button>
        )}
        {!CONTAINED.has(a.status) && (
          <button type="button" class="btn" disabled={busy} onClick={() => ctl.act(a.id, 'quarantine', why)}>
            Quarantine
          </button>
        )}
        {(CONTAINED.has(a.status) || a.status === 'probation') && (
          <button type="button" class="btn" disabled={busy} onClick={() => ctl.act(a.id, 'release', why)}>
            Release
          </button>
        )}
        {a.has_baseline && (
          <button
            type="button"
            class="btn"
            disabled={busy}
            title="The current behaviour becomes normal (after a planned prompt or workload change)"
            onClick={() => ctl.act(a.id, 'accept-baseline', why)}
          >
            Accept as new baseline
          </button>
        )}
        <input class="reason" type="text" placeholder="reason (optional, kept in the audit log)" aria-label="Reason" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      </div>
      {a.diagnosis && (
        <form
          class="row feedback"
          onSubmit={(e) => {
            e.preventDefault();
            void ctl.feedback(a.id, dx, note.trim() || undefined).then((ok) => ok && setNote(''));
          }}
        >
          <label>
            Wrong diagnosis? It was{' '}
            <select aria-label="Actual diagnosis" value={dx} onChange={(e) => setDx(e.currentTarget.value)}>
              {DIAGNOSES.map((d) => (
                <option key={d} value={d}>
                  {words(d)}
                </option>
              ))}
            </select>
          </label>
          <input type="text" placeholder="note (optional)" aria-label="Note" value={note} onInput={(e) => setNote(e.currentTarget.value)} />
          <button type="submit" class="btn" disabled={busy}>
            Send feedback
          </button>
        </form>
      )}
    </div>
  );
}

function Findings({ a }: { a: AgentSummary }) {
  const inf = a.infection;
  const dx = a.diagnosis;
  const h = a.healing;
  if (!inf && !dx && !h) return null;
  return (
    <div class="findings">
      {inf && (
        <p>
          <strong class={`sev sev-${inf.severity}`}>
            {inf.severity} · {sigma(inf.max_deviation)}
          </strong>{' '}
          detected {clock(inf.timestamp)}: {inf.anomalies.map(words).join(', ')}
        </p>
      )}
      {dx && (
        <ol class="hypotheses">
          {(dx.hypotheses.length > 0 ? dx.hypotheses : [dx]).map((hyp) => (
            <li key={hyp.diagnosis}>
              <span class="bar" aria-hidden="true">
                <span style={{ width: `${Math.round(hyp.confidence * 100)}%` }} />
              </span>{' '}
              <strong>{words(hyp.diagnosis)}</strong> {percent(hyp.confidence)} <span class="muted">{hyp.reasoning}</span>
            </li>
          ))}
        </ol>
      )}
      {h && (
        <p>
          Healing: <strong>{h.action ? words(h.action) : 'between steps'}</strong>
          {h.diagnosis && ` for ${words(h.diagnosis)}`} · attempt {h.attempt}
          {h.trigger && ` · ${words(h.trigger)}`}
          {h.tried.length > 0 && <span class="muted"> · tried {h.tried.map(words).join(' → ')}</span>}
        </p>
      )}
      {a.decided_by && <p class="muted">Last decision by {a.decided_by}</p>}
    </div>
  );
}

function History({ events }: { events: ImmuneEvent[] }) {
  if (events.length === 0) return <p class="muted">No events.</p>;
  return (
    <ol class="history">
      {events.map((e) => (
        <li key={e.seq}>
          <time class="muted">{clock(e.ts)}</time> <strong>{words(e.type)}</strong>
          {typeof e.action === 'string' && ` ${words(e.action)}`} <span class="muted">by {e.actor || 'system'}</span> {e.reason && <span class="muted">— {e.reason}</span>}
        </li>
      ))}
    </ol>
  );
}

/** One agent in depth: every vital against its baseline band, the moment of infection, the diagnosis, the actions, the history. */
export function AgentDetailView({ id, onClose }: { id: string; onClose: () => void }) {
  const ctl = useContext(ControllerContext);
  useSubscription(ctl.store);
  useSubscription(ctl);
  const live = ctl.store.get().agents.find((a) => a.id === id) ?? null;
  const [detail, setDetail] = useState<AgentDetail | null>(null);
  const [error, setError] = useState('');
  const [extra, setExtra] = useState<Vitals[]>([]);
  const closeRef = useRef<HTMLButtonElement>(null);

  // Refetch when the agent changes state: baseline, deviations and history move with it.
  const phase = live ? `${live.status}:${live.since}` : '';
  useEffect(() => {
    let cancelled = false;
    ctl.api.agent(id).then(
      (d) => {
        if (cancelled) return;
        setDetail(d);
        setExtra([]);
        setError('');
      },
      (e: unknown) => !cancelled && setError(e instanceof ApiError ? `${e.message} (${e.code})` : String(e)),
    );
    return () => {
      cancelled = true;
    };
  }, [id, phase, ctl]);

  useEffect(() => closeRef.current?.focus(), [id]);

  // Between refetches, each new "latest" from the stream extends the charts.
  const latestTs = live?.latest?.timestamp;
  useEffect(() => {
    if (!live?.latest || !detail) return;
    const l = live.latest;
    setExtra((prev) => {
      const lastTs = prev.length > 0 ? prev[prev.length - 1].timestamp : (detail.recent_vitals.at(-1)?.timestamp ?? -Infinity);
      return l.timestamp > lastTs ? [...prev, vitalsOfLatest(id, l)].slice(-200) : prev;
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [latestTs, detail]);

  const samples = useMemo(() => (detail ? [...detail.recent_vitals, ...extra].slice(-200) : []), [detail, extra]);
  const gaps = useMemo(() => withGaps(samples), [samples]);
  const xs = gaps.xs;
  const agent = live ?? detail?.agent ?? null;
  const infectionTs = agent?.infection?.timestamp;
  // Keyed on values, not on the summary object the stream replaces every second: charts redraw only when something moved.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const markers = useMemo(() => markersOf(detail?.history ?? [], agent), [detail, infectionTs]);
  const bands = useMemo(() => VITALS.map((s) => bandOf(detail?.baseline?.[s.key])), [detail]);
  const series = useMemo(() => VITALS.map((s) => gaps.rows.map((v) => (v === null ? null : s.read(v)))), [gaps]);

  return (
    <div class="drawer-backdrop" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <aside class="drawer" role="dialog" aria-modal="true" aria-label={`Agent ${id}`} data-detail={id}>
        <header class="drawer-head">
          <h2>{id}</h2>
          {agent && <StatusBadge status={agent.status} />}
          <span class="spacer" />
          <button ref={closeRef} type="button" class="btn sm ghost" onClick={onClose} title="Close (Esc)">
            Close ✕
          </button>
        </header>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        {agent && (
          <>
            <p class="meta">
              {agent.type} · {agent.model}
              {agent.provider && ` (${agent.provider})`} · {agent.source} · {count(agent.executions)} tasks · {agent.status} since {clock(agent.since)} · last seen{' '}
              {clock(agent.last_seen)}
              {agent.mcp_servers.length > 0 && <span class="mcp"> · MCP: {agent.mcp_servers.join(', ')}</span>}
            </p>
            {ctl.canAct && <Actions a={agent} />}
            <Findings a={agent} />
          </>
        )}
        {!detail && !error && <p class="muted">Loading…</p>}
        {detail && (
          <>
            {!detail.baseline && <p class="muted">No baseline yet: the agent is still learning what normal looks like, so no band is drawn.</p>}
            <div class="charts">
              {VITALS.map((s, i) => (
                <VitalChart
                  key={s.key}
                  title={s.title}
                  xs={xs}
                  ys={series[i]}
                  band={bands[i]}
                  markers={markers}
                  format={s.format}
                  minTop={s.minTop}
                  deviation={detail.deviations[s.key]}
                />
              ))}
            </div>
            <h3>History</h3>
            <History events={detail.history} />
          </>
        )}
      </aside>
    </div>
  );
}
