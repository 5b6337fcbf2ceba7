import { timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { ImmuneError } from '../domain/errors.js';
import type { Logger } from '../log.js';
import { toImmuneError } from '../server/error-reply.js';
import { typeboxValidatorCompiler } from '../server/validator.js';
import type { Store } from '../store/store.js';
import { RUN_ID_PATTERN } from './schemas.js';
import { seedRoutes } from './seed-routes.js';
import { storeRoutes } from './store-routes.js';

export interface ServerApiOptions {
  store: Store;
  log: Logger;
  /** SERVER_API_KEY; empty = no authentication (the seed's behaviour; keep the server on loopback then). */
  apiKey: string;
  /** Largest request body, bytes: snapshots of large fleets are big. */
  bodyLimit?: number;
  now?: () => number;
}

export interface Ctx {
  store: Store;
  now: () => number;
  runOf(req: FastifyRequest): string;
}

const runIdRe = new RegExp(RUN_ID_PATTERN);

/** The run a request is scoped to: X-Run-Id, else ?run_id, else "default" (as the seed server does). */
export function runOf(req: FastifyRequest): string {
  const header = req.headers['x-run-id'];
  const fromQuery = (req.query as Record<string, unknown> | undefined)?.run_id;
  const run = (Array.isArray(header) ? header[0] : header) ?? (typeof fromQuery === 'string' ? fromQuery : undefined) ?? 'default';
  if (!runIdRe.test(run)) throw new ImmuneError('IMM_ERR_VALIDATION', `run id '${run.slice(0, 140)}' must match ${RUN_ID_PATTERN}`, { field: 'run_id' });
  return run;
}

function credentialOf(req: FastifyRequest): string {
  const key = req.headers['x-api-key'];
  if (typeof key === 'string' && key !== '') return key;
  const auth = req.headers.authorization ?? '';
  return auth.startsWith('Bearer ') ? auth.slice(7) : '';
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * `immune server-api`: the REST persistence server of the seed's
 * client-deployed architecture, fronting any Store. Seed paths and shapes,
 * plus batch endpoints that our ApiStore uses for speed.
 */
export async function buildServerApi(o: ServerApiOptions): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: o.log.child({ module: 'server-api' }) as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: o.bodyLimit ?? 64 * 1024 * 1024,
  });
  app.setValidatorCompiler(typeboxValidatorCompiler);

  app.setErrorHandler((err: FastifyError | ImmuneError, req, reply) => {
    const e = toImmuneError(err, 'application/json');
    if (e.status >= 500) req.log.error({ err, reqId: req.id }, 'request failed');
    if (e.code === 'IMM_ERR_STORE_UNAVAILABLE') reply.header('retry-after', '1');
    return reply.code(e.status).send(e.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(new ImmuneError('IMM_ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`).toJSON());
  });

  if (o.apiKey === '') o.log.warn('SERVER_API_KEY is not set: the server API accepts requests without a key');
  app.addHook('onRequest', async (req) => {
    if (o.apiKey === '' || req.url === '/api/v1/health') return;
    if (!sameSecret(credentialOf(req), o.apiKey)) throw new ImmuneError('IMM_ERR_UNAUTHORIZED', 'missing or wrong API key: send X-API-Key or Authorization: Bearer');
  });

  const ctx: Ctx = { store: o.store, now: o.now ?? (() => Date.now() / 1000), runOf };

  app.get('/api/v1/health', async (_req, reply) => {
    const h = await o.store.health();
    return reply.code(h.ok ? 200 : 503).send(h.ok ? { status: 'healthy', store: h.kind, detail: h.detail } : { status: 'unhealthy', store: h.kind, error: h.detail });
  });

  seedRoutes(app, ctx);
  storeRoutes(app, ctx);
  return app;
}
