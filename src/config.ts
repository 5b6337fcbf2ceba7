import { homedir } from 'node:os';
import { join } from 'node:path';
import { ImmuneError } from './domain/errors.js';

/**
 * The only reader of process.env. Every setting is declared once in SETTINGS
 * (name, default, parser, one-line doc); docs/CONFIG.md and the deployment
 * tests are checked against this table.
 */

type Parser<T> = (raw: string, name: string) => T;

interface Setting<T> {
  env: string;
  doc: string;
  default: T | ((env: Env) => T);
  parse: Parser<T>;
  /** Secrets are never logged or echoed. */
  secret?: boolean;
}

type Env = Record<string, string | undefined>;

const bad = (name: string, msg: string) => new ImmuneError('IMM_ERR_CONFIG', `invalid setting ${name}: ${msg}`, { setting: name });

const num =
  (opts: { min?: number; max?: number; integer?: boolean } = {}): Parser<number> =>
  (raw, name) => {
    const x = Number(raw.trim());
    if (raw.trim() === '' || !Number.isFinite(x)) throw bad(name, `'${raw}' is not a number`);
    if (opts.integer && !Number.isInteger(x)) throw bad(name, `'${raw}' is not an integer`);
    if (opts.min !== undefined && x < opts.min) throw bad(name, `${x} is below the minimum ${opts.min}`);
    if (opts.max !== undefined && x > opts.max) throw bad(name, `${x} is above the maximum ${opts.max}`);
    return x;
  };
const str: Parser<string> = (raw) => raw.trim();
const oneOf =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw, name) => {
    const v = raw.trim().toLowerCase() as T;
    if (!values.includes(v)) throw bad(name, `'${raw}' must be one of ${values.join(', ')}`);
    return v;
  };
const bool: Parser<boolean> = (raw, name) => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw bad(name, `'${raw}' must be true or false`);
};
const url: Parser<string> = (raw, name) => {
  try {
    const u = new URL(raw.trim());
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    return raw.trim().replace(/\/+$/, '');
  } catch {
    throw bad(name, `'${raw}' is not an http(s) URL`);
  }
};
const urlList: Parser<string[]> = (raw, name) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => url(s, name));
const list: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function setting<T>(s: Setting<T>): Setting<T> {
  return s;
}

/** Declared settings, grouped as they appear in docs/CONFIG.md. */
export const SETTINGS = {
  // Server
  port: setting({ env: 'PORT', doc: 'HTTP port of the control plane (dashboard, API, ingest).', default: 8090, parse: num({ min: 0, max: 65535, integer: true }) }),
  host: setting({ env: 'HOST', doc: 'Bind address. Keep 127.0.0.1 unless a proxy or firewall protects the port.', default: '127.0.0.1', parse: str }),
  bodyLimitBytes: setting({ env: 'BODY_LIMIT_BYTES', doc: 'Largest accepted request body, bytes.', default: 1024 * 1024, parse: num({ min: 1024, integer: true }) }),
  corsOrigins: setting({ env: 'CORS_ORIGINS', doc: 'Comma-separated origins allowed by CORS; empty = no CORS headers at all.', default: [] as string[], parse: list }),
  publicUrl: setting({ env: 'PUBLIC_URL', doc: 'Base URL printed in the login link (default http://HOST:PORT).', default: '', parse: str }),
  // Access control
  ingestApiKey: setting({ env: 'INGEST_API_KEY', doc: 'Key agents send as X-API-KEY to ingest and register. Generated and persisted on first start when unset.', default: '', parse: str, secret: true }),
  operatorToken: setting({ env: 'OPERATOR_TOKEN', doc: 'Bearer token for operators (full access). Generated and persisted on first start when unset.', default: '', parse: str, secret: true }),
  viewerToken: setting({ env: 'VIEWER_TOKEN', doc: 'Optional bearer token with read-only access.', default: '', parse: str, secret: true }),
  // Timestamps accepted by live ingest
  ingestMaxAgeSeconds: setting({ env: 'INGEST_MAX_AGE_SECONDS', doc: 'Oldest sample live ingest accepts, seconds before now.', default: 3600, parse: num({ min: 1 }) }),
  ingestMaxFutureSeconds: setting({ env: 'INGEST_MAX_FUTURE_SECONDS', doc: 'Furthest into the future (clock skew) live ingest accepts, seconds.', default: 300, parse: num({ min: 0 }) }),
  // Control loop
  tickIntervalSeconds: setting({ env: 'TICK_INTERVAL_SECONDS', doc: 'Control-loop tick and simulated task period, seconds.', default: 1, parse: num({ min: 0.01, max: 60 }) }),
  healingStepDelaySeconds: setting({ env: 'HEALING_STEP_DELAY_SECONDS', doc: 'Pause before each healing step so operators can follow it, seconds.', default: 1, parse: num({ min: 0, max: 600 }) }),
  runDurationSeconds: setting({ env: 'RUN_DURATION_SECONDS', doc: 'How long `run` / `demo` run before stopping (0 = until stopped). Default 1200 for run, 600 for demo.', default: -1, parse: num({ min: 0 }) }),
  // Engine
  deviationRequiringApproval: setting({ env: 'DEVIATION_REQUIRING_APPROVAL', doc: 'max_deviation (σ) at or above which healing waits for a human.', default: 5.0, parse: num({ min: 0 }) }),
  ewmaSpan: setting({ env: 'BASELINE_EWMA_SPAN', doc: 'EWMA span of the baselines, samples.', default: 50, parse: num({ min: 2, max: 100000, integer: true }) }),
  minSamples: setting({ env: 'BASELINE_MIN_SAMPLES', doc: 'Samples before an agent is judged.', default: 15, parse: num({ min: 2, max: 100000, integer: true }) }),
  thresholdSigma: setting({ env: 'SENTINEL_THRESHOLD_SIGMA', doc: 'Per-sample deviation (σ) at which a metric counts as elevated.', default: 2.5, parse: num({ min: 0.5, max: 20 }) }),
  probationSamples: setting({ env: 'PROBATION_SAMPLES', doc: 'Consecutive normal samples after a healing action before the agent is declared healed.', default: 5, parse: num({ min: 1, max: 1000, integer: true }) }),
  directiveTimeoutSeconds: setting({ env: 'DIRECTIVE_TIMEOUT_SECONDS', doc: 'How long a healing directive waits for the agent\'s acknowledgement before probation judges the agent on fresh vitals anyway.', default: 30, parse: num({ min: 1, max: 3600 }) }),
  // Simulation
  chaos: setting({ env: 'CHAOS', doc: 'Inject infections into simulated agents on the chaos schedule (run/demo).', default: true, parse: bool }),
  chaosSchedule: setting({ env: 'CHAOS_SCHEDULE', doc: 'Infections to inject into simulated agents: "seconds:infection[:agent][:magnitude],…" (default: the built-in demo cycle).', default: '', parse: str }),
  simSeed: setting({ env: 'SIM_SEED', doc: 'Random seed of the simulated fleet (same seed, same run).', default: 7, parse: num({ integer: true }) }),
  // Persistence
  cacheDir: setting({ env: 'IMMUNE_CACHE_DIR', doc: 'Directory for local state (run id, keys, baselines) and the embedded database.', default: () => join(homedir(), '.immune_cache'), parse: str }),
  store: setting({ env: 'IMMUNE_STORE', doc: 'Force a store: memory, sqlite, influx or api. Default: api if SERVER_API_BASE_URL, else influx if INFLUXDB_URL, else sqlite.', default: '' as '' | 'memory' | 'sqlite' | 'influx' | 'api', parse: oneOf('', 'memory', 'sqlite', 'influx', 'api') }),
  serverApiBaseUrl: setting({ env: 'SERVER_API_BASE_URL', doc: 'Base URL of `immune server-api`; selects the ApiStore.', default: '', parse: url }),
  serverApiKey: setting({ env: 'SERVER_API_KEY', doc: 'Key for the server API (sent as Authorization: Bearer and X-API-Key).', default: '', parse: str, secret: true }),
  serverRunId: setting({ env: 'SERVER_RUN_ID', doc: 'Run id to use with the server API instead of the local one.', default: '', parse: str }),
  serverApiPort: setting({ env: 'SERVER_API_PORT', doc: 'Port of `immune server-api`.', default: 8000, parse: num({ min: 0, max: 65535, integer: true }) }),
  influxUrl: setting({ env: 'INFLUXDB_URL', doc: 'InfluxDB base URL; selects the InfluxDB store when SERVER_API_BASE_URL is unset.', default: '', parse: url }),
  influxToken: setting({ env: 'INFLUXDB_TOKEN', doc: 'InfluxDB token (2.x/3.x) or user:password (1.x).', default: '', parse: str, secret: true }),
  influxOrg: setting({ env: 'INFLUXDB_ORG', doc: 'InfluxDB organisation (2.x).', default: '', parse: str }),
  influxBucket: setting({ env: 'INFLUXDB_BUCKET', doc: 'InfluxDB bucket / database.', default: 'immune_system', parse: str }),
  sqliteSynchronous: setting({ env: 'SQLITE_SYNCHRONOUS', doc: 'normal: every acknowledged write survives a crash or kill -9 of the process (fsync at checkpoints); full: also survives power loss (one fsync per grouped commit, slower acknowledgements).', default: 'normal' as 'normal' | 'full', parse: oneOf('normal', 'full') }),
  storeQueueMax: setting({ env: 'STORE_QUEUE_MAX', doc: 'Records held (memory + spill file) while the store is unreachable; beyond it losses are counted and reported.', default: 1_000_000, parse: num({ min: 1000, integer: true }) }),
  vitalsRetentionDays: setting({ env: 'VITALS_RETENTION_DAYS', doc: 'Vitals older than this are deleted in the background; events are kept.', default: 7, parse: num({ min: 0.0001 }) }),
  // Observability out
  otlpEndpoint: setting({ env: 'OTEL_EXPORTER_OTLP_ENDPOINT', doc: 'OTLP/HTTP endpoint for metrics export, e.g. http://localhost:4318.', default: '', parse: url }),
  otelServiceName: setting({ env: 'OTEL_SERVICE_NAME', doc: 'service.name of exported metrics.', default: 'ai-agent-immune-system', parse: str }),
  otelMetricExportIntervalMs: setting({ env: 'OTEL_METRIC_EXPORT_INTERVAL_MS', doc: 'Metric export interval, ms.', default: 5000, parse: num({ min: 100, integer: true }) }),
  metricsMaxAgentSeries: setting({ env: 'METRICS_MAX_AGENT_SERIES', doc: 'Most agents that get their own Prometheus series; the rest are aggregated as agent_id="other".', default: 200, parse: num({ min: 0, integer: true }) }),
  // Notifications
  webhookUrls: setting({ env: 'WEBHOOK_URLS', doc: 'Comma-separated URLs that receive JSON notifications.', default: [] as string[], parse: urlList }),
  slackWebhookUrls: setting({ env: 'SLACK_WEBHOOK_URLS', doc: 'Comma-separated Slack incoming-webhook URLs.', default: [] as string[], parse: urlList }),
  webhookSecret: setting({ env: 'WEBHOOK_SECRET', doc: 'HMAC-SHA256 key for the X-Immune-Signature header of webhooks and control-URL directives (generated when unset).', default: '', parse: str, secret: true }),
  // Logging
  logLevel: setting({ env: 'LOG_LEVEL', doc: 'trace, debug, info, warn, error, fatal (seed names WARNING and CRITICAL are accepted).', default: 'info', parse: (raw, name) => oneOf('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent')(({ warning: 'warn', critical: 'fatal' } as Record<string, string>)[raw.trim().toLowerCase()] ?? raw, name) }),
  logFormat: setting({ env: 'LOG_FORMAT', doc: 'text (human-readable) or json.', default: 'text' as 'text' | 'json', parse: oneOf('text', 'json') }),
} as const;

type Settings = typeof SETTINGS;
export type Config = Readonly<{ [K in keyof Settings]: Settings[K] extends Setting<infer T> ? T : never }>;

/** Checks every variable in one place, names the bad one, applies defaults, returns a frozen object. */
export function parseConfig(env: Env = process.env, overrides: Partial<{ -readonly [K in keyof Config]: Config[K] }> = {}): Config {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS) as Array<[string, Setting<unknown>]>) {
    const raw = env[s.env];
    if (raw === undefined || raw === '') out[key] = typeof s.default === 'function' ? (s.default as (e: Env) => unknown)(env) : s.default;
    else out[key] = s.parse(raw, s.env);
  }
  Object.assign(out, overrides);
  return Object.freeze(out) as Config;
}

/** Names of every environment variable the product reads (for docs and deployment checks). */
export function settingNames(): string[] {
  return Object.values(SETTINGS).map((s) => s.env);
}

/** Markdown table of every setting, for docs/CONFIG.md. */
export function settingsTable(): string {
  const rows = Object.values(SETTINGS).map((s: Setting<unknown>) => {
    const d = typeof s.default === 'function' ? '(see description)' : Array.isArray(s.default) ? '(empty)' : s.default === '' ? '(empty)' : String(s.default);
    return `| \`${s.env}\` | ${d} | ${s.doc} |`;
  });
  return ['| Variable | Default | Meaning |', '|---|---|---|', ...rows].join('\n');
}
