import type { Status } from '../types';

const LABEL: Readonly<Record<Status, string>> = {
  learning: 'learning',
  healthy: 'healthy',
  quarantined: 'quarantined',
  pending_approval: 'pending approval',
  healing: 'healing',
  probation: 'probation',
  rejected: 'rejected',
  exhausted: 'exhausted',
};

export function statusLabel(s: Status): string {
  return LABEL[s] ?? s;
}

/** Each lifecycle state has its own colour (styles.css, --st-<status>). */
export function StatusBadge({ status }: { status: Status }) {
  return <span class={`badge st-${status}`}>{statusLabel(status)}</span>;
}
