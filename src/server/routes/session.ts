import type { FastifyInstance } from 'fastify';
import { ImmuneError } from '../../domain/errors.js';
import type { Deps } from '../app.js';
import { setNoStore } from '../auth.js';
import { SessionBody } from '../schemas.js';

/** Browser login: the one-time link, a pasted token, the CSRF token, logout. */
export function sessionRoutes(app: FastifyInstance, d: Deps): void {
  app.get<{ Querystring: { token?: string } }>('/login', { schema: { hide: true } }, async (req, reply) => {
    setNoStore(reply);
    const role = d.auth.redeemLoginToken(req.query.token ?? '');
    if (!role) {
      d.log.warn({ ip: req.ip }, 'login link rejected (used, expired or wrong)');
      return reply.redirect('/#login-expired', 302);
    }
    d.log.info({ ip: req.ip }, 'operator logged in through the one-time link');
    return reply.header('set-cookie', d.auth.sessionCookie(role)).redirect('/', 302);
  });

  app.post<{ Body: { token: string } }>('/api/v1/session', { schema: { tags: ['session'], summary: 'Log a browser in with the operator or viewer token', body: SessionBody } }, async (req, reply) => {
    const role = d.auth.roleForToken(req.body.token);
    if (!role) throw new ImmuneError('IMM_ERR_UNAUTHORIZED', 'wrong token');
    setNoStore(reply);
    return reply.header('set-cookie', d.auth.sessionCookie(role)).send({ ok: true, role });
  });

  app.get('/api/v1/session', { schema: { tags: ['session'], summary: 'Who is logged in, and the CSRF token for state-changing requests' } }, async (req, reply) => {
    const p = d.auth.principal(req);
    setNoStore(reply);
    return { role: p.role, via: p.via, csrf_token: d.auth.csrfForRequest(req) };
  });

  app.post('/api/v1/logout', { schema: { tags: ['session'], summary: 'Clear the session cookie' } }, async (_req, reply) => reply.header('set-cookie', d.auth.clearCookie()).send({ ok: true }));
}
