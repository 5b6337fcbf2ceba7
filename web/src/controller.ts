import { createContext } from 'preact';
import { ApiError, type Action, type Api } from './api';
import type { LiveStore } from './live';
import type { Role } from './types';

export interface Toast {
  id: number;
  kind: 'ok' | 'error';
  text: string;
}

const PAST: Readonly<Record<Action, string>> = {
  approve: 'Approved healing of',
  reject: 'Rejected healing of',
  heal: 'Healing started for',
  quarantine: 'Quarantined',
  release: 'Released',
  'accept-baseline': 'Accepted the current behaviour as the baseline of',
};

/**
 * Runs operator actions: marks the agent busy (its buttons disable), applies
 * the summary the server answers with at once (the stream confirms within a
 * second), and reports the outcome, errors included, in a toast.
 */
export class Controller {
  busy = new Set<string>();
  toasts: Toast[] = [];
  /** Incremented on every notification (see useSubscription). */
  version = 0;
  private nextToast = 1;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly api: Api,
    readonly store: LiveStore,
    readonly role: Role,
  ) {}

  get canAct(): boolean {
    return this.role === 'operator';
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private notify(): void {
    this.version += 1;
    for (const fn of this.listeners) fn();
  }

  toast(kind: Toast['kind'], text: string): void {
    const t = { id: this.nextToast++, kind, text };
    this.toasts = [...this.toasts.slice(-4), t];
    this.notify();
    setTimeout(() => this.dismiss(t.id), kind === 'error' ? 10_000 : 4000);
  }

  dismiss(id: number): void {
    this.toasts = this.toasts.filter((t) => t.id !== id);
    this.notify();
  }

  private async run(key: string, fn: () => Promise<string>): Promise<boolean> {
    if (this.busy.has(key)) return false;
    this.busy = new Set(this.busy).add(key);
    this.notify();
    try {
      this.toast('ok', await fn());
      return true;
    } catch (e) {
      const msg = e instanceof ApiError ? `${e.message} (${e.code})` : String(e);
      this.toast('error', msg);
      return false;
    } finally {
      const next = new Set(this.busy);
      next.delete(key);
      this.busy = next;
      this.notify();
    }
  }

  act(id: string, action: Action, reason?: string): Promise<boolean> {
    return this.run(id, async () => {
      const res = await this.api.act(id, action, reason);
      if (res.agent) this.store.pushAgents([res.agent]);
      return `${PAST[action]} ${id}`;
    });
  }

  feedback(id: string, diagnosis: string, note?: string): Promise<boolean> {
    return this.run(id, async () => {
      const res = await this.api.feedback(id, diagnosis, note);
      if (res.agent) this.store.pushAgents([res.agent]);
      return `Feedback recorded for ${id}: it was ${diagnosis.replace(/_/g, ' ')}`;
    });
  }

  approveAll(): Promise<boolean> {
    return this.run('bulk:approve', async () => {
      const res = await this.api.approveAll();
      if (res.agents) this.store.pushAgents(res.agents);
      return `Approved ${res.approved_count} pending healing(s)`;
    });
  }

  rejectAll(): Promise<boolean> {
    return this.run('bulk:reject', async () => {
      const res = await this.api.rejectAll();
      if (res.agents) this.store.pushAgents(res.agents);
      return `Rejected ${res.rejected_count} pending healing(s)`;
    });
  }

  healAll(): Promise<boolean> {
    return this.run('bulk:heal', async () => {
      const res = await this.api.healAll();
      if (res.agents) this.store.pushAgents(res.agents);
      return `Healing started for ${res.healed_count} rejected agent(s)`;
    });
  }
}

export const ControllerContext = createContext<Controller>(null as unknown as Controller);
