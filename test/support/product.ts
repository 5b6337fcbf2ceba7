import { parseConfig } from '../../src/config.js';
import { ImmuneProduct } from '../../src/control/product.js';
import { silentLogger } from '../../src/log.js';
import { seededRandom } from '../../src/sim/random.js';
import { MemoryStore } from '../../src/store/memory.js';

export const INGEST_KEY = 'test-ingest-key-0123456789';
export const OPERATOR_TOKEN = 'test-operator-token-0123456789';
export const VIEWER_TOKEN = 'test-viewer-token-0123456789';

/** The real product on a free loopback port, in memory, with known credentials and no simulated agents. */
export async function startProduct(env: Record<string, string> = {}) {
  const config = parseConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    INGEST_API_KEY: INGEST_KEY,
    OPERATOR_TOKEN,
    VIEWER_TOKEN,
    HEALING_STEP_DELAY_SECONDS: '0',
    TICK_INTERVAL_SECONDS: '0.1',
    IMMUNE_STORE: 'memory',
    ...env,
  });
  const product = await ImmuneProduct.create({ config, log: silentLogger(), agents: 0, durationSeconds: 0, chaos: null, seed: 1, store: new MemoryStore() });
  await product.start();
  const base = product.url;

  async function call(method: string, path: string, opts: { body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    let body: string | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(base + path, { method, headers, body, redirect: 'manual' });
    const text = await res.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: res.status, json, text, headers: res.headers };
  }

  const op = (method: string, path: string, body?: unknown) => call(method, path, { body, headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
  const viewer = (method: string, path: string, body?: unknown) => call(method, path, { body, headers: { authorization: `Bearer ${VIEWER_TOKEN}` } });
  const ingest = (body: unknown, headers: Record<string, string> = {}) => call('POST', '/api/v1/ingest', { body, headers: { 'x-api-key': INGEST_KEY, ...headers } });

  return { product, base, call, op, viewer, ingest, stop: () => product.stop() };
}

/** Vitals for an agent over HTTP: `n` normal samples ending at "now", or faulty ones. */
export function vitalsFor(agentId: string, seed = 1) {
  const rnd = seededRandom(seed);
  return (fault: { tools?: number; input?: number; latency?: number } = {}, ts = Date.now() / 1000) => {
    const input = Math.round(800 * rnd.logNormal(0.15) * (fault.input ?? 1));
    const output = Math.round(400 * rnd.logNormal(0.15));
    return {
      agent_id: agentId,
      agent_type: 'Research',
      timestamp: ts,
      latency_ms: Math.round(300 * rnd.logNormal(0.2) * (fault.latency ?? 1)),
      input_tokens: input,
      output_tokens: output,
      cost: ((input + output) * 0.003) / 1000,
      tool_calls: Math.round(3 * (fault.tools ?? 1)),
      retries: 0,
      success: true,
      model: 'GPT-5',
      prompt_hash: 'p1',
    };
  };
}
