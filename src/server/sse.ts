import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ImmuneEvent } from '../domain/events.js';
import type { ControlPlane } from '../control/control-plane.js';

const EVENT_NAME = /^[a-z_]+$/;

/** Formats one SSE message. Names and ids must not contain newlines (they would split the message). */
export function sseMessage(event: string, data: unknown, id?: number): string {
  if (!EVENT_NAME.test(event)) throw new Error(`invalid SSE event name ${JSON.stringify(event)}`);
  // JSON.stringify escapes newlines inside strings, so data stays on one line.
  return `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

interface Client {
  reply: FastifyReply;
}

/**
 * Pushes state changes to dashboards: log events as they happen (coalesced
 * every 100 ms), changed agent summaries and stats once per second, the store
 * status when it changes. A reconnecting client resumes from Last-Event-ID.
 */
export class SseHub {
  private readonly clients = new Set<Client>();
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

  handle(req: FastifyRequest, reply: FastifyReply): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const client: Client = { reply };
    this.clients.add(client);
    req.raw.on('close', () => this.clients.delete(client));
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
    const changed = this.cp.takeChangedAgents();
    if (this.clients.size === 0) return;
    if (changed.length > 0) this.broadcast(sseMessage('agents', changed));
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

  private broadcast(text: string): void {
    for (const c of this.clients) {
      if (!c.reply.raw.writableEnded) c.reply.raw.write(text);
    }
  }
}
