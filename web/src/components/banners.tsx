import { clock, count, sigma, words } from '../format';
import type { Connection } from '../live';
import type { Incident, StoreStatus } from '../types';

/** "model:GPT-5" → "model GPT-5". */
function groupLabel(group: string): string {
  const i = group.indexOf(':');
  return i < 0 ? group : `${group.slice(0, i)} ${group.slice(i + 1)}`;
}

/** Everything accepted but not yet in the store: write-behind batches plus the resilient queue. */
export function pendingWrites(s: StoreStatus): { queued: number; dropped: number } {
  return { queued: s.queued + (s.queue?.queued ?? 0), dropped: s.dropped + (s.queue?.dropped ?? 0) };
}

export function Banners({ store, incidents, connection }: { store: StoreStatus | null; incidents: Incident[]; connection: Connection }) {
  return (
    <div class="banners" aria-live="polite">
      {connection === 'reconnecting' && (
        <div class="banner warn" data-banner="connection">
          Live updates interrupted — reconnecting. What you see may be stale.
        </div>
      )}
      {store && (!store.ok || store.degraded) && (
        <div class="banner danger" data-banner="store">
          Store degraded ({store.kind}): {store.detail || 'unreachable'} — the control plane keeps working from memory; {count(pendingWrites(store).queued)} write(s) queued
          {pendingWrites(store).dropped > 0 ? `, ${count(pendingWrites(store).dropped)} dropped` : ''}.
        </div>
      )}
      {incidents.map((i) => (
        <div class="banner incident" data-banner="incident" key={i.id}>
          Provider incident: {groupLabel(i.group)}, {i.agents.length} agents affected — not quarantined.{' '}
          <span class="muted-light">
            Since {clock(i.started_at)} · {i.anomalies.map(words).join(', ')} · up to {sigma(i.max_deviation)}
          </span>
        </div>
      ))}
    </div>
  );
}
