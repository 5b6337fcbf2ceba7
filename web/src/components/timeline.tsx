import { useState } from 'preact/hooks';
import { clock, percent, words } from '../format';
import { memo } from '../hooks';
import type { HealingEntry, HealingKind, Pattern, Trigger } from '../types';

const KIND_LABEL: Readonly<Record<HealingKind, string>> = {
  infection_detected: 'infection detected',
  approval_requested: 'approval requested',
  approved: 'approved',
  rejected: 'rejected',
  heal_now: 'heal now',
  healing_attempt: 'healing attempt',
  healing_applied: 'action applied',
  healing_succeeded: 'healed',
  healing_failed: 'healing failed',
  exhausted: 'exhausted',
  quarantined: 'quarantined',
  released: 'released',
  baseline_accepted: 'baseline accepted',
  feedback: 'diagnosis feedback',
};

const TRIGGER_LABEL: Readonly<Record<Trigger, string>> = { auto: 'auto-healed', after_approval: 'after approval', heal_now: 'heal now' };

/** People are named; the engine is "system". */
function who(actor: string): string {
  return actor === '' ? 'system' : actor;
}

const Entry = memo(function Entry({ h }: { h: HealingEntry }) {
  return (
    <li class={`tl tl-${h.kind}`} data-kind={h.kind} data-agent={h.agent_id} data-trigger={h.trigger ?? ''}>
      <time class="muted">{clock(h.timestamp)}</time>
      <a class="agent-link" href={`#/agents/${encodeURIComponent(h.agent_id)}`}>
        {h.agent_id}
      </a>
      <span class="tl-kind">{KIND_LABEL[h.kind] ?? h.kind}</span>
      {h.action && <span class="tl-action">{words(h.action)}</span>}
      {h.diagnosis && <span class="muted">for {words(h.diagnosis)}</span>}
      {h.trigger && <span class="tag">{TRIGGER_LABEL[h.trigger] ?? h.trigger}</span>}
      {h.result && <span class={`result r-${h.result}`}>{h.result}</span>}
      <span class="muted">by {who(h.actor)}</span>
      {h.message && <span class="tl-msg muted">{h.message}</span>}
    </li>
  );
});

/** Entries shown until "Show all" is pressed: a dense first screen and a lighter first paint. */
export const TIMELINE_FIRST = 40;

export function Timeline({ entries }: { entries: HealingEntry[] }) {
  const [all, setAll] = useState(false);
  if (entries.length === 0) return <p class="muted empty">No healing actions yet.</p>;
  const shown = all ? entries : entries.slice(0, TIMELINE_FIRST);
  return (
    <>
      <ol class="timeline" data-list="timeline">
        {shown.map((h) => (
          <Entry key={h.seq} h={h} />
        ))}
      </ol>
      {entries.length > shown.length && (
        <button type="button" class="btn sm more" onClick={() => setAll(true)}>
          Show all {entries.length}
        </button>
      )}
    </>
  );
}

export function Patterns({ patterns }: { patterns: Pattern[] }) {
  if (patterns.length === 0) return <p class="muted empty">Nothing learned yet: patterns appear after the first healings.</p>;
  const rows = [...patterns].sort((a, b) => (a.diagnosis < b.diagnosis ? -1 : a.diagnosis > b.diagnosis ? 1 : b.success_rate - a.success_rate));
  return (
    <table class="patterns" data-list="patterns">
      <thead>
        <tr>
          <th>diagnosis</th>
          <th>action</th>
          <th class="num">worked</th>
          <th class="num">failed</th>
          <th>success rate</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((p) => (
          <tr key={`${p.diagnosis}/${p.action}`}>
            <td>{words(p.diagnosis)}</td>
            <td>{words(p.action)}</td>
            <td class="num">{p.successes}</td>
            <td class="num">{p.failures}</td>
            <td>
              <span class="bar" aria-hidden="true">
                <span style={{ width: `${Math.round(p.success_rate * 100)}%` }} />
              </span>{' '}
              {percent(p.success_rate)}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
