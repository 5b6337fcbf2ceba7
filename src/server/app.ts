import { existsSync } from 'node:fs';
import { createServer, type ServerOptions } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { ControlPlane } from '../control/control-plane.js';
import type { DirectiveExecutor } from '../control/executors.js';
import { ImmuneError } from '../domain/errors.js';
import type { Logger } from '../log.js';
import type { Auth } from './auth.js';
import { errorReply } from './error-reply.js';
import { fastIngest } from './fast-ingest.js';
import { agentRoutes } from './routes/agents.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { ingestRoutes } from './routes/ingest.js';
import { seedRoutes } from './routes/seed.js';
import { sessionRoutes } from './routes/session.js';
import { SseHub } from './sse.js';
import { typeboxValidatorCompiler } from './validator.js';

export interface AppDeps {
  cp: ControlPlane;
  auth: Auth;
  config: Config;
  log: Logger;
  directives: DirectiveExecutor;
  /** Directory of the built dashboard (default web/dist of the package). */
  webRoot?: string;
  /** Integrations that add routes (OTLP receiver, /metrics). */
  plugins?: Array<(app: FastifyInstance) => void | Promise<void>>;
}

export interface Deps extends AppDeps {
  sse: SseHub;
}

const here = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_WEB_ROOT = join(here, '..', '..', 'web', 'dist');

/** Builds the control plane's HTTP app: JSON API, ingest, SSE, OpenAPI, dashboard. `app.listen` is the caller's. */
export async function buildApp(deps: AppDeps): Promise<{ app: FastifyInstance; sse: SseHub }> {
  const httpLog = deps.log.child({ module: 'http' });
  const fast = fastIngest({ cp: deps.cp, auth: deps.auth, log: httpLog, bodyLimitBytes: deps.config.bodyLimitBytes });
  const app: FastifyInstance = Fastify({
    // Fastify's own HTTP/1 server (the same settings it applies: lib/server.js), with single-record ingest
    // answered before fastify sees it when the request is a plain one (fast-ingest.ts).
    serverFactory: (handler, options) => {
      const o = options as { http?: ServerOptions; keepAliveTimeout: number; requestTimeout: number; connectionTimeout: number; maxRequestsPerSocket: number };
      const server = createServer(o.http ?? {}, (req, res) => fast.handle(req, res) || handler(req, res));
      server.keepAliveTimeout = o.keepAliveTimeout;
      server.requestTimeout = o.requestTimeout;
      server.setTimeout(o.connectionTimeout);
      if (o.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = o.maxRequestsPerSocket;
      return server;
    },
    loggerInstance: httpLog as unknown as FastifyBaseLogger,
    // One log line per request would drown the decisions at 15k req/s; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (a pino child costs ~1 µs, 1 % of single-record ingest): errors are logged with their reqId explicitly.
    childLoggerFactory: (logger) => logger,
    bodyLimit: deps.config.bodyLimitBytes,
    trustProxy: false,
    ajv: undefined,
  });
  app.setValidatorCompiler(typeboxValidatorCompiler);

  app.addContentTypeParser(['application/x-ndjson', 'application/jsonl'], { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseNdjson(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  // From here on requests are refused with 503 while in flight ones finish: fastify's route does that.
  app.addHook('preClose', (done) => {
    fast.close();
    done();
  });

  app.setErrorHandler((err: FastifyError | ImmuneError, req, reply) => {
    const { status, body } = errorReply(err);
    if (status >= 500) req.log.error({ err, reqId: req.id }, 'request failed');
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(new ImmuneError('IMM_ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`).toJSON());
  });

  if (deps.config.corsOrigins.length > 0) {
    const allowed = new Set(deps.config.corsOrigins);
    app.addHook('onRequest', async (req, reply) => {
      const origin = req.headers.origin;
      if (origin && allowed.has(origin)) {
        reply.header('access-control-allow-origin', origin).header('vary', 'Origin');
        reply.header('access-control-allow-headers', 'content-type, authorization, x-api-key, x-csrf-token');
        reply.header('access-control-allow-methods', 'GET, POST, OPTIONS');
        if (req.method === 'OPTIONS') return reply.code(204).send();
      }
    });
  }

  await app.register(fastifySwagger, {
    // Shared schemas keep their $id as their component name (VitalsInput, …).
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Agent Immune control plane', version: '0.1.0', description: 'See docs/API.md' },
      components: {
        securitySchemes: {
          ingestKey: { type: 'apiKey', in: 'header', name: 'X-API-KEY' },
          bearer: { type: 'http', scheme: 'bearer' },
          session: { type: 'apiKey', in: 'cookie', name: 'immune_session' },
        },
      },
    },
  });

  const sse = new SseHub(deps.cp);
  const full: Deps = { ...deps, sse };
  await app.register(async (api) => {
    healthRoutes(api, full);
    sessionRoutes(api, full);
    ingestRoutes(api, full);
    agentRoutes(api, full);
    eventRoutes(api, full);
    seedRoutes(api, full);
    for (const p of deps.plugins ?? []) await p(api);
  });

  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const webRoot = deps.webRoot ?? DEFAULT_WEB_ROOT;
  if (existsSync(join(webRoot, 'index.html'))) {
    await app.register(fastifyStatic, { root: webRoot, prefix: '/', index: ['index.html'], wildcard: true, cacheControl: false, setHeaders: (reply, path) => reply.header('cache-control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache') });
  } else {
    app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.type('text/plain').send('The dashboard is not built: run `npm run build`.\n'));
  }
  return { app, sse };
}

function parseNdjson(body: string): unknown[] {
  const out: unknown[] = [];
  const lines = body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      throw new ImmuneError('IMM_ERR_MALFORMED_JSON', `NDJSON line ${i + 1} is not valid JSON (${(e as Error).message})`, { line: i + 1 });
    }
  }
  return out;
}
