import type { Config } from '../config.js';
import { ImmuneError } from '../domain/errors.js';
import type { Logger } from '../log.js';
import { closeGracefully } from '../server/graceful-close.js';
import { createStore, selectStoreKind } from '../store/open-store.js';
import { isRetryable } from '../store/resilient.js';
import type { Store } from '../store/store.js';
import { buildServerApi } from './app.js';

export interface StartServerApiOptions {
  config: Config;
  log: Logger;
  /** The store to front; default per configuration (InfluxDB when INFLUXDB_URL is set, else the embedded SQLite file). */
  store?: Store;
  /** Default SERVER_API_PORT; 0 picks a free port. */
  port?: number;
  /** Default HOST (127.0.0.1). */
  host?: string;
}

export interface RunningServerApi {
  url: string;
  store: Store;
  /** Stops listening, then closes the store it opened; safe to call twice. */
  close(): Promise<void>;
}

/** Starts `immune server-api`. The server never fronts another server API (that would be a loop). */
export async function startServerApi(o: StartServerApiOptions): Promise<RunningServerApi> {
  let store = o.store;
  const owned = store === undefined;
  if (!store) {
    let kind = selectStoreKind(o.config);
    if (kind === 'api') {
      if (o.config.store === 'api') throw new ImmuneError('IMM_ERR_CONFIG', 'immune server-api cannot use IMMUNE_STORE=api (it would call itself); choose sqlite, influx or memory');
      kind = o.config.influxUrl !== '' ? 'influx' : 'sqlite';
    }
    store = createStore(o.config, o.log, kind);
    try {
      await store.open();
    } catch (err) {
      // A backing store that is still starting (compose, Kubernetes) is not a reason to exit: answer 503 until it is up.
      if (!isRetryable(err)) throw err;
      o.log.warn({ err }, 'the backing store is unreachable; answering 503 until it is back');
    }
  }
  const app = await buildServerApi({ store, log: o.log, apiKey: o.config.serverApiKey });
  try {
    await app.listen({ port: o.port ?? o.config.serverApiPort, host: o.host ?? o.config.host });
  } catch (err) {
    if (owned) await store.close();
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (o.port ?? o.config.serverApiPort);
  const host = o.host ?? o.config.host;
  let closed = false;
  const s = store;
  o.log.info({ url: `http://${host}:${port}`, store: s.kind, auth: o.config.serverApiKey !== '' }, 'server API listening');
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    store: s,
    close: async () => {
      if (closed) return;
      closed = true;
      await closeGracefully(app);
      if (owned) await s.close();
    },
  };
}
