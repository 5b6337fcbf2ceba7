import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlPlane } from '../../src/control/control-plane.js';
import { silentLogger } from '../../src/log.js';
import { fastIngest } from '../../src/server/fast-ingest.js';
import { capturingLogger } from '../support/log.js';
import { INGEST_KEY, startProduct, vitalsFor } from '../support/product.js';

/**
 * The ingest fast path against fastify's route. The product's server runs both, and they are meant to
 * be indistinguishable from outside, so the fast path is also mounted alone on a second server whose
 * fallback answers 599: that shows which requests it takes, and its answers can be compared byte for
 * byte with the route's (reached on the product with a Content-Type the fast path leaves alone).
 */
const LIMIT = 64 * 1024;
const FELL_THROUGH = 599;

type Product = Awaited<ReturnType<typeof startProduct>>;
let s: Product;
let fast: ReturnType<typeof fastIngest>;
let fastOnly: http.Server;
let fastBase: string;

beforeAll(async () => {
  s = await startProduct({ BODY_LIMIT_BYTES: String(LIMIT) });
  fast = fastIngest({ cp: s.product.cp, auth: s.product.auth, log: silentLogger(), bodyLimitBytes: LIMIT });
  fastOnly = http.createServer((req, res) => {
    if (fast.handle(req, res)) return;
    req.resume();
    res.writeHead(FELL_THROUGH).end();
  });
  await new Promise<void>((r) => fastOnly.listen(0, '127.0.0.1', r));
  fastBase = `http://127.0.0.1:${(fastOnly.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => fastOnly.close(r));
  await s.stop();
});

interface Answer {
  status: number;
  type: string | undefined;
  body: string;
}

/** A request with exactly these headers (fetch would add its own); `pieces` are written 20 ms apart. */
function send(base: string, pieces: string[], headers: Record<string, string | number>, opts: { method?: string; path?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${opts.path ?? '/api/v1/ingest'}`, { method: opts.method ?? 'POST', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    const write = (i: number) => {
      if (i === pieces.length) return void req.end();
      req.write(pieces[i]);
      setTimeout(() => write(i + 1), 20);
    };
    write(0);
  });
}

const json = (text: string, extra: Record<string, string | number> = {}) => ({ 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-api-key': INGEST_KEY, ...extra });
/** The same request as fastify's route sees it: a Content-Type with a parameter is left to fastify. */
const viaRoute = (text: string) => send(s.base, [text], json(text, { 'content-type': 'application/json; charset=utf-8' }));
const viaFast = (text: string) => send(fastBase, [text], json(text));

describe('ingest fast path', () => {
  it('answers a record and a batch itself, with the bytes of fastify’s route', async () => {
    for (const [a, b] of [
      [vitalsFor('fp-a')(), vitalsFor('fp-b')()],
      [[vitalsFor('fp-c')(), vitalsFor('fp-d')()], [vitalsFor('fp-e')(), vitalsFor('fp-f')()]],
    ]) {
      const fastAnswer = await viaFast(JSON.stringify(a));
      const routeAnswer = await viaRoute(JSON.stringify(b));
      expect(fastAnswer.status).toBe(200);
      expect(fastAnswer.type).toBe(routeAnswer.type);
      expect(fastAnswer.body.replace(/fp-[ab]/g, 'X').replace(/fp-[ce]/g, 'Y').replace(/fp-[df]/g, 'Z')).toBe(routeAnswer.body.replace(/fp-[ab]/g, 'X').replace(/fp-[ce]/g, 'Y').replace(/fp-[df]/g, 'Z'));
    }
    expect(s.product.cp.engine.get('fp-a')?.executions).toBe(1);
    expect(s.product.cp.engine.get('fp-d')?.executions).toBe(1);
  });

  it('reads a body that arrives in several pieces', async () => {
    const text = JSON.stringify(vitalsFor('fp-pieces')());
    const r = await send(fastBase, [text.slice(0, 40), text.slice(40, 90), text.slice(90)], json(text));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ ok: true, accepted: 1, agent_id: 'fp-pieces' });
  });

  it.each([
    ['malformed JSON', '{"agent_id": "fp-bad",'],
    ['a __proto__ key', '{"agent_id":"fp-proto","__proto__":{"polluted":true}}'],
    ['a non-finite number', '{"agent_id":"fp-inf","cost":1e999}'],
    ['a negative number', JSON.stringify({ ...vitalsFor('fp-neg')(), latency_ms: -1 })],
    ['a timestamp two hours old', JSON.stringify({ ...vitalsFor('fp-old')(), timestamp: Date.now() / 1000 - 7200 })],
    ['an empty batch', '[]'],
    ['a batch with one bad record', JSON.stringify([vitalsFor('fp-batch')(), { agent_id: 'fp-batch', tool_calls: 'many' }])],
  ])('answers %s as the route does, and ingests none of it', async (_name, text) => {
    const fastAnswer = await viaFast(text);
    const routeAnswer = await viaRoute(text);
    expect(fastAnswer.status).toBeGreaterThanOrEqual(400);
    expect(fastAnswer).toEqual(routeAnswer);
    for (const id of ['fp-bad', 'fp-proto', 'fp-inf', 'fp-neg', 'fp-old', 'fp-batch']) expect(s.product.cp.engine.get(id)).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each<[string, Record<string, string | number>, { method?: string; path?: string }?]>([
    ['no key', { 'x-api-key': '' }],
    ['a wrong key', { 'x-api-key': 'nope' }],
    ['NDJSON', { 'content-type': 'application/x-ndjson' }],
    ['a Content-Type parameter', { 'content-type': 'application/json; charset=utf-8' }],
    ['an Origin (CORS)', { origin: 'https://example.com' }],
    ['a body over the limit', { 'content-length': LIMIT + 1 }],
    ['an empty body', { 'content-length': 0 }],
    ['another method', {}, { method: 'PUT' }],
    ['a query string', {}, { path: '/api/v1/ingest?x=1' }],
  ])('leaves a request with %s to fastify, unread', async (_name, extra, opts) => {
    const text = JSON.stringify(vitalsFor('fp-left')());
    const headers = json(text, extra);
    const declared = Number(headers['content-length']);
    const r = await send(fastBase, [declared === 0 ? '' : declared > LIMIT ? text.padEnd(declared) : text], headers, opts);
    expect(r.status).toBe(FELL_THROUGH);
    expect(s.product.cp.engine.get('fp-left')).toBeUndefined();
  });

  it('leaves a chunked body (no Content-Length) to fastify', async () => {
    const text = JSON.stringify(vitalsFor('fp-chunked')());
    const { 'content-length': _, ...headers } = json(text);
    const r = await send(fastBase, [text], { ...headers, 'transfer-encoding': 'chunked' });
    expect(r.status).toBe(FELL_THROUGH);
  });

  it('ingests nothing from a client that goes away in the middle of its body', async () => {
    const text = JSON.stringify(vitalsFor('fp-gone')());
    await new Promise<void>((resolve) => {
      const req = http.request(`${fastBase}/api/v1/ingest`, { method: 'POST', headers: json(text) });
      req.on('error', () => resolve());
      req.write(text.slice(0, 50));
      setTimeout(() => req.destroy(), 30);
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(s.product.cp.engine.get('fp-gone')).toBeUndefined();
  });

  it('answers a store that fails with 500 and the error table’s body, logs it, and acknowledges nothing', async () => {
    // A control plane whose durable write fails (as when the disk is full): the fast path must not answer 200.
    const { log, lines } = capturingLogger('error');
    const failing = {
      ingest: () => ({ accepted: 1, agents: new Map([['fp-store', { status: 'learning', directive: null }]]) }),
      durable: () => Promise.reject(new Error('SQLITE_FULL: database or disk is full')),
    } as unknown as ControlPlane;
    const alone = fastIngest({ cp: failing, auth: s.product.auth, log, bodyLimitBytes: LIMIT });
    const server = http.createServer((req, res) => alone.handle(req, res) || res.writeHead(FELL_THROUGH).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const text = JSON.stringify(vitalsFor('fp-store')());
      const r = await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, [text], json(text));
      expect(r.status).toBe(500);
      expect(JSON.parse(r.body)).toEqual({ ok: false, code: 'IMM_ERR_INTERNAL', error: 'internal error; see the server log' });
      expect(lines).toEqual([expect.objectContaining({ msg: 'request failed', path: '/api/v1/ingest' })]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('the product’s server keeps the connection settings fastify gives its own', () => {
    const server = s.product.app.server as http.Server;
    expect(server.keepAliveTimeout).toBe(72_000);
    expect(server.listenerCount('request')).toBe(1);
  });

  it('once closing, leaves every request to fastify (which refuses it with 503)', async () => {
    fast.close();
    const text = JSON.stringify(vitalsFor('fp-closing')());
    expect((await viaFast(text)).status).toBe(FELL_THROUGH);
  });
});
