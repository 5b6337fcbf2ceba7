import type { FastifyInstance } from 'fastify';

/** At shutdown, requests in flight get this long to finish before the remaining connections are closed. */
export const HTTP_DRAIN_MS = 2000;

/**
 * Stops accepting, lets requests in flight finish, and closes what is still open after `drainMs`.
 * A client that holds a connection open without sending a request (load generators, some proxies)
 * otherwise kept close() waiting up to the 60 s header timeout, past a Kubernetes grace period.
 */
export async function closeGracefully(app: FastifyInstance, drainMs = HTTP_DRAIN_MS): Promise<void> {
  const cut = setTimeout(() => app.server.closeAllConnections(), drainMs);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}
