import type { FastifyInstance } from 'fastify';
import type { Deps } from '../app.js';

/** Liveness and readiness: unauthenticated, for probes. Readiness is 503 while the store is unreachable. */
export function healthRoutes(app: FastifyInstance, d: Deps): void {
  app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness: the process serves requests' } }, async () => ({ ok: true }));
  app.get('/readyz', { schema: { tags: ['health'], summary: 'Readiness: whether the store is reachable (503 when degraded)' } }, async (_req, reply) => {
    const store = await d.cp.storeStatus();
    return reply.code(store.ok ? 200 : 503).send({ ok: store.ok, store });
  });
}
