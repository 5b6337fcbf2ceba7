import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { ImmuneEngine } from '../engine/engine.js';
import type { Logger } from '../log.js';
import { buildApp } from '../server/app.js';
import { Auth } from '../server/auth.js';
import { closeGracefully } from '../server/graceful-close.js';
import type { SseHub } from '../server/sse.js';
import { defaultSchedule, type ChaosEntry } from '../sim/chaos.js';
import { createFleet } from '../sim/fleet.js';
import { seededRandom } from '../sim/random.js';
import { SimRunner } from '../sim/runner.js';
import { startOtelMetrics, type OtelMetrics } from '../integrations/otel-metrics.js';
import { otlpTraceRoutes, OtlpTraceReceiver } from '../integrations/otlp/index.js';
import { registerOtlpMetrics } from '../integrations/otlp-metrics.js';
import { ImmuneMetrics } from '../integrations/prometheus.js';
import { Signals } from '../integrations/signals.js';
import { Notifier } from '../integrations/webhooks.js';
import { encodedSnapshot, openPersistence, type Persistence } from '../state/persistence.js';
import { SharedBytes } from '../state/shared-bytes.js';
import { MemoryStore } from '../store/memory.js';
import type { Store } from '../store/store.js';
import { ControlPlane } from './control-plane.js';
import { ControlUrlExecutor } from './control-url-executor.js';
import { DirectiveExecutor, SimExecutor } from './executors.js';

export interface ProductOptions {
  config: Config;
  log: Logger;
  /** Simulated agents to run in-process (0 for `serve`). */
  agents: number;
  /** Stop after this many seconds (0 = until stopped). */
  durationSeconds: number;
  /** Chaos schedule; null = no chaos. */
  chaos: ChaosEntry[] | null;
  seed: number;
  newRun?: boolean;
  /** Injected store (tests): no local state, keys from the config or ephemeral. Default: per configuration, with restart state. */
  store?: Store;
  /** Seconds between detection-state checkpoints (local state and store). */
  checkpointSeconds?: number;
  clock?: () => number;
}

/** Agents per slice of a checkpoint (one slice is built and encoded between two turns of the event loop). */
const CHECKPOINT_SLICE = 100;
/** Share of the event loop a periodic checkpoint may take while it runs. */
const CHECKPOINT_DUTY = 0.1;
/** A checkpoint is followed by a pause of at least this many times its own duration (≤ 2 % of the time). */
const CHECKPOINT_BUDGET = 50;
/** …but never more than this many times the configured interval apart (10 s → at most 60 s). */
const CHECKPOINT_MAX_STRETCH = 6;

/**
 * The pause after a slice of a checkpoint that took `tookMs` of the event loop: paced, (1/CHECKPOINT_DUTY − 1)
 * times as long, so the checkpoint takes at most CHECKPOINT_DUTY of the loop; null (only a turn of the loop)
 * when not paced or once stopping.
 */
export function checkpointPauseMs(tookMs: number, o: { paced: boolean; stopping: boolean }): number | null {
  const factor = o.paced ? 1 / CHECKPOINT_DUTY - 1 : 0;
  return factor > 0 && !o.stopping ? tookMs * factor : null;
}

/** When the next periodic checkpoint starts after one that took `lastMs` (its pauses included), with `everyMs` configured. */
export function nextCheckpointMs(everyMs: number, lastMs: number): number {
  return Math.min(Math.max(everyMs, lastMs * CHECKPOINT_BUDGET), everyMs * CHECKPOINT_MAX_STRETCH);
}

/**
 * The whole product in one process: `create` wires, `start` listens and
 * starts the loop, `stop` undoes everything in reverse and is safe to call
 * twice. `done` resolves when the run duration has elapsed.
 */
export class ImmuneProduct {
  private tickTimer: NodeJS.Timeout | null = null;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private checkpointing: Promise<void> | null = null;
  /** Event-loop time the last checkpoint took (its slices and encoding, not the pauses between them). */
  private checkpointBusyMs = 0;
  /** Size of the last detection checkpoint's JSON: the next one's first guess. */
  private checkpointBytes = 0;
  /** (log seq, samples seen) at the last checkpoint: a quiet fleet is not re-saved every interval. */
  private checkpointed = '';
  private endTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private resolveDone!: () => void;
  readonly done: Promise<void> = new Promise((r) => (this.resolveDone = r));
  url = '';

  private constructor(
    readonly cp: ControlPlane,
    readonly app: FastifyInstance,
    readonly auth: Auth,
    private readonly sse: SseHub,
    private readonly store: Store,
    private readonly sim: SimRunner | null,
    private readonly o: ProductOptions,
    readonly keys: { ingestApiKey: string; ingestKeySource: string },
    private readonly integrations: { metrics: ImmuneMetrics; otel: OtelMetrics | null; notifier: Notifier; otlp: OtlpTraceReceiver; controlUrl: ControlUrlExecutor },
    /** Local state + resilient store + retention; null when a store was injected. */
    readonly persistence: Persistence | null,
  ) {}

  static async create(o: ProductOptions): Promise<ImmuneProduct> {
    const { config, log } = o;
    const clock = o.clock ?? (() => Date.now() / 1000);
    let store: Store;
    let runId: string;
    let persistence: Persistence | null = null;
    let keys: { ingest: string; operator: string; webhook: string; ingestSource: string };
    if (o.store) {
      store = o.store;
      await store.open();
      runId = `run-${new Date(clock() * 1000).toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
      await store.registerRun(runId);
      keys = {
        ingest: config.ingestApiKey || `imm-${randomBytes(24).toString('base64url')}`,
        operator: config.operatorToken || `op-${randomBytes(24).toString('base64url')}`,
        webhook: config.webhookSecret || randomBytes(32).toString('base64url'),
        ingestSource: config.ingestApiKey ? 'env' : 'generated',
      };
    } else {
      // Restart resilience: run id, generated keys, the event log and detection state come back.
      persistence = await openPersistence(config, log, { newRun: o.newRun });
      store = persistence.store;
      runId = persistence.runId;
      const k = persistence.keys;
      keys = { ingest: k.ingest_api_key, operator: k.operator_token, webhook: k.webhook_secret, ingestSource: k.source.ingest_api_key };
    }
    const ingestApiKey = keys.ingest;
    const auth = new Auth({ ingestApiKey, operatorToken: keys.operator, viewerToken: config.viewerToken }, clock);

    const engine = new ImmuneEngine({
      ewmaSpan: config.ewmaSpan,
      minSamples: config.minSamples,
      thresholdSigma: config.thresholdSigma,
      deviationRequiringApproval: config.deviationRequiringApproval,
      probationSamples: config.probationSamples,
      healingStepDelaySeconds: config.healingStepDelaySeconds,
    });

    if (persistence) engine.restore(persistence.events, persistence.snapshot ?? undefined);

    let cpRef: ControlPlane | null = null;
    const getCp = () => cpRef!;
    const rnd = seededRandom(o.seed);
    const fleet = createFleet(o.agents, rnd);
    const sim = fleet.length > 0 ? new SimRunner(fleet, o.chaos ?? [], rnd, log.child({ module: 'sim' }), clock()) : null;
    const simExec = new SimExecutor(sim?.byId ?? new Map(), getCp);
    const directives = new DirectiveExecutor(getCp, config.directiveTimeoutSeconds);
    const cp = new ControlPlane({
      engine,
      store,
      runId,
      log: log.child({ module: 'control' }),
      clock,
      bounds: { maxAgeSeconds: config.ingestMaxAgeSeconds, maxFutureSeconds: config.ingestMaxFutureSeconds },
      // controlUrl is declared below (it shares the webhook secret); this only runs once the product is built.
      executorFor: (rt) => (rt.meta.control_url ? controlUrl : rt.meta.source === 'simulated' ? simExec : directives),
      directiveFor: (id) => {
        const d = directives.directiveFor(id);
        return d && engine.get(id)?.wf.attempt?.attempt_id === d.id ? d : null;
      },
    });
    cpRef = cp;
    if (persistence) cp.restoreFrom(persistence.events);

    // Signals out: Prometheus /metrics, OTLP metrics export, webhooks — all fed from the same events and vitals.
    const webhookSecret = keys.webhook;
    const controlUrl = new ControlUrlExecutor({ cp: getCp, secret: webhookSecret, log: log.child({ module: 'control-url' }) });
    const notifier = new Notifier({
      webhookUrls: config.webhookUrls,
      slackWebhookUrls: config.slackWebhookUrls,
      secret: webhookSecret,
      context: (id) => {
        const rt = engine.get(id);
        return rt ? { infection: rt.wf.infection, diagnosis: rt.wf.diagnosis, tried: rt.wf.tried } : undefined;
      },
      publicUrl: config.publicUrl || undefined,
      source: runId,
      log: log.child({ module: 'webhooks' }),
    });
    const signals = new Signals({
      maxAgentSeries: config.metricsMaxAgentSeries,
      agentStates: () => cp.stats().by_status,
      activeIncidents: () => engine.incidents().length,
      webhookStats: () => notifier.stats(),
    });
    cp.onVitals((v) => signals.onVitals(v));
    cp.onEvents((es) => {
      signals.onEvents(es);
      notifier.onEvents(es);
    });
    const metrics = new ImmuneMetrics(signals);
    const otel = startOtelMetrics(signals, config, log.child({ module: 'otel' }));

    // OpenTelemetry GenAI traces in: each assembled invocation is one vitals sample.
    const otlp = new OtlpTraceReceiver({
      onVitals: (records) => {
        for (const v of records) cp.observe(v, { source: 'external' });
      },
      timestampBounds: { maxAgeSeconds: config.ingestMaxAgeSeconds, maxFutureSeconds: config.ingestMaxFutureSeconds },
      log: log.child({ module: 'otlp' }),
    });
    registerOtlpMetrics(metrics.registry, () => otlp.stats());

    const { app, sse } = await buildApp({
      cp,
      auth,
      config,
      log,
      directives,
      plugins: [
        async (api) => {
          await api.register(otlpTraceRoutes({ receiver: otlp, authenticate: (req) => auth.checkIngestKey(req), bodyLimitBytes: config.bodyLimitBytes * 4 }));
        },
        (api) => {
          api.get('/metrics', { schema: { tags: ['health'], summary: 'Prometheus metrics (operator or viewer bearer token)' } }, async (req, reply) => {
            auth.principal(req);
            return reply.type(metrics.contentType).send(await metrics.metricsText());
          });
        },
      ],
    });
    return new ImmuneProduct(cp, app, auth, sse, store, sim, o, { ingestApiKey, ingestKeySource: keys.ingestSource }, { metrics, otel, notifier, otlp, controlUrl }, persistence);
  }

  /** Listens on HOST:PORT (0 = any free port), starts the tick loop and the simulated fleet. */
  async start(): Promise<void> {
    const { config, log } = this.o;
    await this.app.listen({ port: config.port, host: config.host });
    const addr = this.app.server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.url = config.publicUrl || `http://${host}:${addr.port}`;
    this.sse.start();
    const tickMs = config.tickIntervalSeconds * 1000;
    this.tickTimer = setInterval(() => this.tick(), tickMs);
    if (this.persistence) this.scheduleCheckpoint(0);
    if (this.o.durationSeconds > 0) {
      this.endTimer = setTimeout(() => {
        log.info({ seconds: this.o.durationSeconds }, 'run duration reached; stopping');
        this.resolveDone();
      }, this.o.durationSeconds * 1000);
    }
  }

  get loginUrl(): string {
    return `${this.url}/login?token=${this.auth.oneTimeLoginToken()}`;
  }

  /**
   * Checkpoints every `checkpointSeconds` (10 s), or less often when one takes long: a fleet of
   * 10,000 agents makes an 11 MB snapshot, and saving it every 10 s cost single-record ingest about
   * a tenth of its throughput. The pause after each is at least CHECKPOINT_BUDGET times its duration
   * (its own pauses included).
   */
  private scheduleCheckpoint(lastMs: number): void {
    if (this.stopped) return;
    const every = (this.o.checkpointSeconds ?? 10) * 1000;
    const wait = nextCheckpointMs(every, lastMs);
    // busy is 0 when the checkpoint was skipped (nothing changed since the last one) or failed (warned).
    if (lastMs > 0 && this.checkpointBusyMs > 0) this.o.log.debug({ took_ms: Math.round(lastMs), busy_ms: Math.round(this.checkpointBusyMs), next_in_ms: Math.round(wait) }, 'detection state checkpointed');
    this.checkpointTimer = setTimeout(() => {
      // The back-off counts the pauses too: a checkpoint every 50× its event-loop time came every ~10 s
      // for 10,000 agents, and each added a tenth to a loop already ~85 % busy for two seconds.
      const t0 = performance.now();
      this.checkpointBusyMs = 0;
      void this.checkpoint({ paced: true }).finally(() => this.scheduleCheckpoint(performance.now() - t0));
    }, wait);
    this.checkpointTimer.unref();
  }

  /**
   * Saves detection state (baselines, sentinel evidence) locally and in the store; one at a time.
   * `paced`: the periodic checkpoint takes at most CHECKPOINT_DUTY of the event loop while it runs
   * (the one at shutdown goes at full speed).
   */
  async checkpoint(opts: { paced?: boolean } = {}): Promise<void> {
    if (!this.persistence) return;
    if (this.checkpointing) return this.checkpointing;
    const engine = this.cp.engine;
    const mark = `${engine.lastSeq}:${this.cp.counters.executions}`;
    if (mark === this.checkpointed) return;
    const workflow = { quarantined: [] as string[], pending: [] as string[], rejected: [] as string[] };
    for (const rt of engine.all()) {
      if (rt.wf.state === 'pending_approval') workflow.pending.push(rt.id);
      else if (rt.wf.state === 'rejected') workflow.rejected.push(rt.id);
      else if (rt.wf.state !== 'learning' && rt.wf.state !== 'healthy' && rt.wf.state !== 'probation') workflow.quarantined.push(rt.id);
    }
    this.checkpointing = (async () => {
      try {
        // Events first: the snapshot's seq must never be ahead of the durable log.
        await this.cp.flush();
        const seq = engine.lastSeq;
        // Built and encoded to bytes in slices of CHECKPOINT_SLICE agents (~3 ms each) with the event loop
        // free in between: a 10,000-agent snapshot in one call stalled ingest ~250 ms, and joining its
        // 11 MB of text into one string and encoding that another ~80 ms.
        // The slices' objects are not kept: held until the end, every young-generation GC during the
        // checkpoint copied them again (40 % of the event loop's time went to GC while it ran).
        // Paced, a slice is followed by a pause of (1/CHECKPOINT_DUTY − 1) times its own duration: run flat
        // out, a 10,000-agent checkpoint added ~30 % to a loop already ~85 % busy with 15,000 requests/s
        // for most of a second, and the backlog put that round's p99 at 140–225 ms.
        let busy = 0;
        let t = performance.now();
        const out = new SharedBytes(this.checkpointBytes + (this.checkpointBytes >> 3));
        out.append(`{"seq":${seq},"agents":[`);
        let first = true;
        for (const chunk of engine.snapshotChunks(CHECKPOINT_SLICE)) {
          if (chunk.length === 0) continue;
          const text = JSON.stringify(chunk).slice(1, -1);
          out.append(first ? text : `,${text}`);
          first = false;
          const took = performance.now() - t;
          busy += took;
          // Once stopping, the rest goes at full speed: the process is waiting for it to exit.
          const pause = checkpointPauseMs(took, { paced: opts.paced === true, stopping: this.stopped });
          await new Promise((r) => (pause === null ? setImmediate(r) : setTimeout(r, pause)));
          t = performance.now();
        }
        out.append(']}');
        const bytes = out.bytes();
        this.checkpointBytes = bytes.length;
        busy += performance.now() - t;
        await this.persistence!.checkpoint(encodedSnapshot(seq, bytes), workflow, bytes);
        this.checkpointed = mark;
        this.checkpointBusyMs = busy;
      } catch (err) {
        this.o.log.warn({ err }, 'checkpoint failed; will retry');
      } finally {
        this.checkpointing = null;
      }
    })();
    return this.checkpointing;
  }

  private tick(): void {
    try {
      if (this.sim) this.sim.step(this.cp, this.cp.now());
      this.integrations.otlp.flush();
      this.cp.tick();
    } catch (err) {
      this.o.log.error({ err }, 'tick failed');
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    if (this.endTimer) clearTimeout(this.endTimer);
    // Each step is timed: an operator whose pod takes long to stop needs to know which step waits.
    const steps: Record<string, number> = {};
    const timed = async (name: string, f: () => unknown): Promise<void> => {
      const t0 = performance.now();
      await f();
      steps[name] = Math.round(performance.now() - t0);
    };
    this.sse.stop();
    await timed('http', () => closeGracefully(this.app));
    this.integrations.otlp.close();
    this.integrations.controlUrl.close();
    await timed('checkpoint', () => this.checkpoint());
    await timed('writes', () => this.cp.close());
    await timed('notifications', () => this.integrations.notifier.close());
    await timed('otel', () => this.integrations.otel?.shutdown());
    this.integrations.metrics.close();
    await timed('store', () => (this.persistence ? this.persistence.close() : this.store.close()));
    this.o.log.info({ steps_ms: steps }, `stopped in ${Object.values(steps).reduce((a, b) => a + b, 0)} ms`);
    this.resolveDone();
  }
}

export { defaultSchedule };
