import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ImmuneEvent } from '../domain/events.js';
import type { ControlPlane } from '../control/control-plane.js';
import { LATEST_FIELDS, splitChanges, stateKey, VITALS_FIELDS, type AgentSummary } from '../control/views.js';

const EVENT_NAME = /^[a-z_]+$/;

/** Formats one SSE message. Names and ids must not contain newlines (they would split the message). */
export function sseMessage(event: string, data: unknown, id?: number): string {
  if (!EVENT_NAME.test(event)) throw new Error(`invalid SSE event name ${JSON.stringify(event)}`);
  // JSON.stringify escapes newlines inside strings, so data stays on one line.
  return `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

interface Client {
  reply: FastifyReply;
  /** `?form=compact`: state changes as full summaries, vitals-only changes as `vitals` rows. */
  compact: boolean;
}

/**
 * Pushes state changes to dashboards: log events as they happen (coalesced
 * every 100 ms), changed agent summaries and stats once per second, the store
 * status when it changes. A reconnecting client resumes from Last-Event-ID.
 *
 * Compact clients (the dashboard) get, each second, the full summary only of
 * agents whose state changed, and one `vitals` message of rows for the agents
 * that only reported new vitals: ~90 KB instead of ~500 KB with 1,000 busy agents.
 */
export class SseHub {
  private readonly clients = new Set<Client>();
  /** stateKey of every agent as last broadcast, kept only while a compact client is connected. */
  private keys: Map<string, string> | null = null;
  /** Incremented each time changed agents are taken (see `tick`). */
  private ticks = 0;
  private pending: ImmuneEvent[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private lastStore = '';
  private unsubscribe: () => void = () => {};

  constructor(private readonly cp: ControlPlane) {}

  start(): void {
    this.unsubscribe = this.cp.onEvents((es) => {
      if (this.clients.size > 0) this.pending.push(...es);
    });
    this.timers.push(setInterval(() => this.flushEvents(), 100));
    this.timers.push(setInterval(() => void this.second(), 1000));
    this.timers.push(setInterval(() => this.broadcast(': keepalive\n\n'), 15000));
    for (const t of this.timers) t.unref();
  }

  stop(): void {
    this.unsubscribe();
    for (const t of this.timers) clearInterval(t);
    for (const c of this.clients) c.reply.raw.end();
    this.clients.clear();
  }

  get size(): number {
    return this.clients.size;
  }

  /**
   * How many per-second agent batches have been taken so far. A snapshot built after batch n
   * misses nothing that batch n+1 will not carry, so it may be served again until `tick` moves.
   */
  get tick(): number {
    return this.ticks;
  }

  handle(req: FastifyRequest, reply: FastifyReply): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const compact = (req.query as { form?: string } | undefined)?.form === 'compact';
    // The first compact client starts the key map from the current summaries: its overview is
    // built after its stream opened, so only later state changes need to go out whole.
    if (compact && this.keys === null) this.keys = new Map(this.cp.agents().map((a) => [a.id, stateKey(a)]));
    const client: Client = { reply, compact };
    this.clients.add(client);
    req.raw.on('close', () => {
      this.clients.delete(client);
      if (![...this.clients].some((c) => c.compact)) this.keys = null;
    });
    const last = Number(req.headers['last-event-id']);
    res.write('retry: 2000\n\n');
    res.write(sseMessage('hello', { seq: this.cp.engine.lastSeq, resumed: Number.isFinite(last) && this.cp.canResumeFrom(last) }));
    if (Number.isFinite(last) && this.cp.canResumeFrom(last)) {
      const missed = this.cp.recentEvents(last);
      if (missed.length > 0) res.write(sseMessage('events', missed, missed[missed.length - 1].seq));
    }
  }

  private flushEvents(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.broadcast(sseMessage('events', batch, batch[batch.length - 1].seq));
  }

  private async second(): Promise<void> {
    const changed = this.cp.takeChangedAgents(this.clients.size > 0);
    this.ticks += 1;
    if (this.clients.size === 0) return;
    if (changed.length > 0) this.broadcastAgents(changed);
    this.broadcast(sseMessage('stats', this.cp.stats()));
    try {
      const store = await this.cp.storeStatus();
      const key = JSON.stringify(store);
      if (key !== this.lastStore) {
        this.lastStore = key;
        this.broadcast(sseMessage('store', store));
      }
    } catch {
      // Store status is best effort here; /readyz reports it authoritatively.
    }
  }

  /** Full summaries to plain clients; state changes plus vitals rows to compact ones (each serialised once). */
  private broadcastAgents(changed: AgentSummary[]): void {
    let plain = '';
    let compact = '';
    if (this.keys !== null) {
      const { full, rows } = splitChanges(changed, this.keys);
      if (full.length > 0) compact += sseMessage('agents', full);
      if (rows.length > 0) compact += sseMessage('vitals', { fields: VITALS_FIELDS, latest_fields: LATEST_FIELDS, rows });
    }
    for (const c of this.clients) {
      if (c.reply.raw.writableEnded) continue;
      if (!c.compact && plain === '') plain = sseMessage('agents', changed);
      const text = c.compact ? compact : plain;
      if (text !== '') c.reply.raw.write(text);
    }
  }

  private broadcast(text: string): void {
    for (const c of this.clients) {
      if (!c.reply.raw.writableEnded) c.reply.raw.write(text);
    }
  }
}
