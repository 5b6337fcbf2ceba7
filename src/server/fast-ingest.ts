import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorCodes } from 'fastify';
import { parse as secureJsonParse } from 'secure-json-parse';
import type { ControlPlane } from '../control/control-plane.js';
import type { Logger } from '../log.js';
import type { Auth } from './auth.js';
import { errorReply } from './error-reply.js';
import { ingest } from './routes/ingest.js';

const INGEST_PATH = '/api/v1/ingest';

/** Fastify's JSON parsing options (its defaults): a body with a __proto__ or constructor.prototype key is refused. */
const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const;

export interface FastIngestDeps {
  cp: ControlPlane;
  auth: Auth;
  log: Logger;
  bodyLimitBytes: number;
}

/**
 * `POST /api/v1/ingest` without fastify, for the requests agents send all day: JSON with a length, the
 * right key, no Origin. Routing, hooks, the content-type parser and the reply object cost ~8 µs of the
 * ~50 µs a single-record ingest takes on the main thread (docs/DECISIONS.md, "Ingest fast path").
 *
 * It takes a request only when everything that can be judged from the headers is in order, and
 * otherwise returns false before reading anything, so fastify answers it exactly as it answers every
 * other request (a missing key, a body too large, NDJSON, CORS, a server that is closing). After the
 * body is read, it answers with the route's own code and error table: the same bytes and statuses.
 */
export function fastIngest(d: FastIngestDeps): { handle: (req: IncomingMessage, res: ServerResponse) => boolean; close: () => void } {
  let closing = false;

  const respond = (res: ServerResponse, status: number, body: unknown) => {
    const json = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  };

  const fail = (res: ServerResponse, err: unknown) => {
    // The table fastify's error handler answers with (app.ts), so both paths answer alike.
    const { status, body } = errorReply(err);
    if (status >= 500) d.log.error({ err, path: INGEST_PATH }, 'request failed');
    respond(res, status, body);
  };

  const complete = async (res: ServerResponse, text: string) => {
    let body: unknown;
    try {
      body = secureJsonParse(text, undefined, PARSE_OPTIONS);
    } catch {
      return fail(res, new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY());
    }
    try {
      respond(res, 200, await ingest(d.cp, body));
    } catch (err) {
      fail(res, err);
    }
  };

  const handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (closing || req.method !== 'POST' || req.url !== INGEST_PATH) return false;
    const h = req.headers;
    if (h['content-type'] !== 'application/json' || h.origin !== undefined) return false;
    const length = Number(h['content-length']);
    if (!(length > 0 && length <= d.bodyLimitBytes)) return false;
    const key = h['x-api-key'];
    if (typeof key !== 'string' || !d.auth.ingestKeyValid(key, req.socket)) return false;
    // Node frames the body by its Content-Length: it ends at `length` bytes, or never (the client went
    // away, and then nothing was ingested).
    let first: Buffer | null = null;
    let more: Buffer[] | null = null;
    req.on('data', (chunk: Buffer) => {
      if (first === null) first = chunk;
      else (more ??= [first]).push(chunk);
    });
    req.on('end', () => {
      const bytes = more ? Buffer.concat(more) : first;
      void complete(res, bytes ? bytes.toString('utf8') : '');
    });
    return true;
  };

  return { handle, close: () => void (closing = true) };
}
