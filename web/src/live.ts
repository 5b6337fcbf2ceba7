import type { Api } from './api';
import { expandVitals, type VitalsMessage, type VitalsUpdate } from './compact';
import { applyEvents, applyVitals, EMPTY_STATE, fromOverview, mergeAgents, type DashboardState } from './state';
import type { AgentSummary, ImmuneEvent, Overview, Stats, StoreStatus } from './types';

export type Connection = 'connecting' | 'live' | 'reconnecting';

/**
 * Holds the dashboard state and coalesces server pushes: any number of SSE
 * messages between two animation frames become one new state and one render,
 * which keeps 1,000 agents smooth while every agent reports each second.
 */
export class LiveStore {
  private state: DashboardState = EMPTY_STATE;
  private ready = false;
  private agents = new Map<string, AgentSummary>();
  private vitals = new Map<string, VitalsUpdate>();
  private events: ImmuneEvent[] = [];
  private stats: Stats | null = null;
  private store: StoreStatus | null = null;
  private scheduled = false;
  private readonly listeners = new Set<() => void>();
  connection: Connection = 'connecting';
  /** Incremented on every notification (see useSubscription). */
  version = 0;
  /** Why the last overview request failed ('' when it did not); it is retried. */
  loadError = '';

  get(): DashboardState {
    return this.state;
  }

  get loaded(): boolean {
    return this.ready;
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Replaces everything with a fresh overview (first load, or after a reconnect that may have missed events). */
  reset(o: Overview): void {
    this.state = fromOverview(o);
    this.ready = true;
    this.flushNow();
  }

  pushAgents(list: readonly AgentSummary[]): void {
    for (const a of list) this.agents.set(a.id, a);
    this.schedule();
  }

  /** New tasks of agents whose state did not change (the compact stream's `vitals` rows). */
  pushVitals(list: readonly VitalsUpdate[]): void {
    for (const u of list) {
      const prev = this.vitals.get(u.id);
      if (prev === undefined || u.executions >= prev.executions) this.vitals.set(u.id, u);
    }
    this.schedule();
  }

  pushEvents(list: readonly ImmuneEvent[]): void {
    for (const e of list) this.events.push(e);
    this.schedule();
  }

  pushStats(s: Stats): void {
    this.stats = s;
    this.schedule();
  }

  pushStore(s: StoreStatus): void {
    this.store = s;
    this.schedule();
  }

  setLoadError(message: string): void {
    this.loadError = message;
    this.notify();
  }

  setConnection(c: Connection): void {
    if (c === this.connection) return;
    this.connection = c;
    this.notify();
  }

  private schedule(): void {
    if (this.scheduled || !this.ready) return;
    this.scheduled = true;
    // Hidden tabs get no animation frames; a timer keeps the queues from growing until the tab is shown.
    if (typeof document !== 'undefined' && document.visibilityState === 'visible') requestAnimationFrame(() => this.flushNow());
    else setTimeout(() => this.flushNow(), 1000);
  }

  private flushNow(): void {
    this.scheduled = false;
    if (!this.ready) return;
    let s = this.state;
    // Events first: a summary pushed after them already reflects them and is the more complete view.
    if (this.events.length > 0) s = applyEvents(s, this.events);
    if (this.agents.size > 0) s = mergeAgents(s, [...this.agents.values()]);
    // After full summaries: a row applies only when it is newer than what the agent already shows.
    s = applyVitals(s, this.vitals);
    if (this.stats) s = { ...s, stats: this.stats };
    if (this.store) s = { ...s, store: this.store };
    this.agents.clear();
    this.vitals.clear();
    this.events = [];
    this.stats = null;
    this.store = null;
    this.state = s;
    this.notify();
  }

  private notify(): void {
    this.version += 1;
    for (const fn of this.listeners) fn();
  }
}

/**
 * The compact stream: full summaries only when an agent's state changed, `vitals` rows otherwise
 * (~90 KB/s instead of ~500 KB/s with 1,000 busy agents). index.html opens the same URL.
 */
export const STREAM_URL = '/api/v1/stream?form=compact';

function parse<T>(ev: Event): T | null {
  try {
    return JSON.parse((ev as MessageEvent<string>).data) as T;
  } catch {
    return null;
  }
}

/** What the inline script in index.html starts before this bundle has even loaded. */
interface EarlyBoot {
  es: EventSource;
  /** The stream messages received so far; afterwards the queue stops collecting. */
  take(): Event[];
  overview: Promise<Response>;
  session: Promise<Response>;
}

declare global {
  interface Window {
    __immuneBoot?: EarlyBoot;
  }
}

/** Hands over the early stream and requests once; later boots (after a login) start their own. */
export function adoptEarlyBoot(): EarlyBoot | undefined {
  const early = window.__immuneBoot;
  window.__immuneBoot = undefined;
  return early;
}

/**
 * Keeps the store live: the event stream is opened before the overview is
 * fetched, so nothing that happens in between is lost (messages queue until
 * the overview arrives, and events it already reflects are skipped by seq).
 * On a reconnect the overview is reloaded: the stream may have moved past its
 * replay window.
 */
export function startLive(api: Api, store: LiveStore, onUnauthorized: () => void, early?: EarlyBoot): () => void {
  let es: EventSource | null = null;
  let hellos = 0;
  let stopped = false;
  let retry: ReturnType<typeof setTimeout> | undefined;

  const reload = async (pending?: Promise<Response>): Promise<void> => {
    try {
      const o = await api.overview(pending);
      if (stopped) return;
      performance.mark('immune:overview-received');
      store.loadError = '';
      store.reset(o);
    } catch (e) {
      if (stopped) return;
      const status = (e as { status?: number }).status;
      // A 401 on the first load is reported by the session check that runs alongside.
      if (status === 401) {
        if (hellos > 0) onUnauthorized();
        return;
      }
      // Anything else (server busy, network blip): say so and try again, rather than wait forever.
      store.setLoadError(e instanceof Error ? e.message : String(e));
      retry = setTimeout(() => void reload(), 2000);
    }
  };

  const handlers: Record<string, (ev: Event) => void> = {
    open: () => store.setConnection('live'),
    hello: () => {
      hellos += 1;
      store.setConnection('live');
      if (hellos > 1) void reload();
    },
    agents: (ev) => {
      const list = parse<AgentSummary[]>(ev);
      if (list) store.pushAgents(list);
    },
    vitals: (ev) => {
      const m = parse<VitalsMessage>(ev);
      if (m) store.pushVitals(expandVitals(m));
    },
    events: (ev) => {
      const list = parse<ImmuneEvent[]>(ev);
      if (list) store.pushEvents(list);
    },
    stats: (ev) => {
      const s = parse<Stats>(ev);
      if (s) store.pushStats(s);
    },
    store: (ev) => {
      const s = parse<StoreStatus>(ev);
      if (s) store.pushStore(s);
    },
    error: () => {
      store.setConnection('reconnecting');
      if (es?.readyState !== EventSource.CLOSED || stopped) return;
      // The browser gave up (e.g. a 401 or the server went away): check the session, then reopen.
      es = null;
      retry = setTimeout(() => {
        api.session().then(
          () => !stopped && open(),
          (e: unknown) => ((e as { status?: number }).status === 401 ? onUnauthorized() : (retry = setTimeout(open, 2000))),
        );
      }, 1000);
    },
  };

  const attach = (source: EventSource): void => {
    for (const [type, handle] of Object.entries(handlers)) source.addEventListener(type, handle);
  };

  const open = (): void => {
    es = new EventSource(STREAM_URL);
    attach(es);
  };

  if (early) {
    es = early.es;
    attach(es);
    // Same task as attach: no message can slip between the queue and the live handlers.
    for (const ev of early.take()) handlers[ev.type]?.(ev);
    void reload(early.overview);
  } else {
    open();
    void reload();
  }
  return () => {
    stopped = true;
    clearTimeout(retry);
    es?.close();
  };
}
