import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeOverview, expandVitals, type VitalsMessage } from '../../web/src/compact.js';
import { acceptsGzip } from '../../src/server/routes/agents.js';
import { OPERATOR_TOKEN, startProduct, vitalsFor } from '../support/product.js';

/**
 * The dashboard's feed on a real server: the compact overview (gzipped, briefly cached) and the
 * compact stream, which sends a changed agent whole only when its state changed.
 */
type Server = Awaited<ReturnType<typeof startProduct>>;
let s: Server;
const auth = { authorization: `Bearer ${OPERATOR_TOKEN}` };

beforeAll(async () => {
  s = await startProduct();
  for (const id of ['feed-1', 'feed-2', 'feed-3']) {
    const next = vitalsFor(id, id.length);
    expect((await s.ingest(Array.from({ length: 5 }, () => next()))).status).toBe(200);
  }
});
afterAll(async () => {
  await s.stop();
});

/** GET with an explicit Accept-Encoding; the body is returned as sent (not decompressed). */
async function rawGet(path: string, encoding: string): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const { request } = await import('node:http');
  const url = new URL(s.base + path);
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { ...auth, 'accept-encoding': encoding } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: new Headers(res.headers as Record<string, string>), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads SSE messages from a stream until `stop` says so or `ms` pass. */
async function readStream(path: string, ms: number, stop: (msgs: Array<{ event: string; data: unknown }>) => boolean, during?: () => Promise<void>) {
  const ctrl = new AbortController();
  const res = await fetch(s.base + path, { headers: auth, signal: ctrl.signal });
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const msgs: Array<{ event: string; data: unknown }> = [];
  let buf = '';
  const until = Date.now() + ms;
  let started = false;
  try {
    while (Date.now() < until) {
      const chunk = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), until - Date.now()))]);
      if (!chunk || chunk.done) break;
      buf += dec.decode(chunk.value);
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const text = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (\w+)$/m.exec(text)?.[1];
        const data = /^data: (.*)$/m.exec(text)?.[1];
        if (event && data) msgs.push({ event, data: JSON.parse(data) });
      }
      // Act only once the server has registered this client (it says hello).
      if (!started && msgs.some((m) => m.event === 'hello')) {
        started = true;
        await during?.();
      }
      if (stop(msgs)) break;
    }
  } finally {
    ctrl.abort();
  }
  return msgs;
}

describe('GET /api/v1/overview?form=compact', () => {
  it('decodes to exactly the agents of the full form, in a fraction of the bytes', async () => {
    const full = (await s.op('GET', '/api/v1/overview')).json;
    const compact = (await s.op('GET', '/api/v1/overview?form=compact')).json;
    expect(compact.form).toBe('compact');
    expect(compact.agents.rows).toHaveLength(full.agents.length);
    const decoded = decodeOverview(compact);
    expect(decoded.agents).toEqual(full.agents);
    expect(decoded.seq).toBe(full.seq);
    expect(decoded.stats.total_agents).toBe(full.stats.total_agents);
    // Field names travel once per message, so per agent the rows are about half the size.
    expect(JSON.stringify(compact.agents.rows).length).toBeLessThan(JSON.stringify(full.agents).length * 0.55);
  });

  it('is gzipped when the client accepts it, and plain otherwise', async () => {
    const gz = await rawGet('/api/v1/overview?form=compact', 'gzip, deflate, br');
    expect(gz.status).toBe(200);
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(gz.headers.get('vary')).toContain('accept-encoding');
    const unzipped = JSON.parse(gunzipSync(gz.body).toString('utf8'));
    const plain = await rawGet('/api/v1/overview?form=compact', 'identity');
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(plain.headers.get('content-type')).toContain('application/json');
    expect(JSON.parse(plain.body.toString('utf8')).agents).toEqual(unzipped.agents);
  });

  it.each([
    ['gzip, deflate, br', true],
    ['br;q=1.0, gzip;q=0.8', true],
    ['*', true],
    ['gzip;q=0', false],
    ['identity', false],
    [undefined, false],
  ])('Accept-Encoding %s → gzip %s', (header, expected) => {
    expect(acceptsGzip(header)).toBe(expected);
  });

  it('rejects an unknown form with 400', async () => {
    expect((await s.op('GET', '/api/v1/overview?form=tiny')).status).toBe(400);
  });

  it('never serves a cached overview that misses a state change', async () => {
    await s.op('GET', '/api/v1/overview?form=compact');
    expect((await s.op('POST', '/api/v1/agents/feed-3/quarantine', {})).status).toBe(200);
    const after = decodeOverview((await s.op('GET', '/api/v1/overview?form=compact')).json);
    expect(after.agents.find((a) => a.id === 'feed-3')?.status).toBe('quarantined');
    expect((await s.op('POST', '/api/v1/agents/feed-3/release', {})).status).toBe(200);
  });
});

describe('GET /api/v1/stream?form=compact', () => {
  it('sends a new task as a vitals row, and a state change as the full summary, within a second', async () => {
    const next = vitalsFor('feed-1', 'feed-1'.length);
    for (let i = 0; i < 5; i++) next(); // the same sequence as beforeAll, so the next record is new
    const t0 = Date.now();
    const msgs = await readStream(
      '/api/v1/stream?form=compact',
      4000,
      (m) => m.some((x) => x.event === 'agents' && (x.data as Array<{ id: string }>).some((a) => a.id === 'feed-2')) && m.some((x) => x.event === 'vitals'),
      async () => {
        expect((await s.ingest(next())).status).toBe(200);
        expect((await s.op('POST', '/api/v1/agents/feed-2/quarantine', {})).status).toBe(200);
      },
    );
    expect(Date.now() - t0).toBeLessThan(2500);
    const vitals = msgs.filter((m) => m.event === 'vitals').flatMap((m) => expandVitals(m.data as VitalsMessage));
    const row = vitals.find((v) => v.id === 'feed-1');
    expect(row).toBeDefined();
    expect(row!.executions).toBe(6);
    expect(row!.latest).toMatchObject({ latency: expect.any(Number), tokens: expect.any(Number), success: expect.any(Boolean) });
    const full = msgs.filter((m) => m.event === 'agents').flatMap((m) => m.data as Array<{ id: string; status: string }>);
    expect(full.map((a) => a.id)).not.toContain('feed-1');
    expect(full.find((a) => a.id === 'feed-2')?.status).toBe('quarantined');
    expect(vitals.map((v) => v.id)).not.toContain('feed-2');
    await s.op('POST', '/api/v1/agents/feed-2/release', {});
  });

  it('still sends plain clients every changed agent as a full summary', async () => {
    const next = vitalsFor('feed-1', 'feed-1'.length);
    for (let i = 0; i < 6; i++) next();
    const msgs = await readStream(
      '/api/v1/stream',
      4000,
      (m) => m.some((x) => x.event === 'agents' && (x.data as Array<{ id: string }>).some((a) => a.id === 'feed-1')),
      async () => void (await s.ingest(next())),
    );
    expect(msgs.some((m) => m.event === 'vitals')).toBe(false);
    const a = msgs.filter((m) => m.event === 'agents').flatMap((m) => m.data as Array<{ id: string; executions: number; latest: unknown }>).find((x) => x.id === 'feed-1');
    expect(a).toMatchObject({ executions: 7, latest: expect.any(Object) });
  });
});

describe('form parameter', () => {
  it('rejects an unknown stream form with 400 before the stream starts', async () => {
    expect((await s.op('GET', '/api/v1/stream?form=tiny')).status).toBe(400);
  });
});
