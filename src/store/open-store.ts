import { join } from 'node:path';
import type { Config } from '../config.js';
import { ImmuneError } from '../domain/errors.js';
import type { Logger } from '../log.js';
import { ApiStore } from './api.js';
import { InfluxStore } from './influx.js';
import { MemoryStore } from './memory.js';
import { ResilientStore } from './resilient.js';
import { SqliteStore } from './sqlite.js';
import type { Store, StoreKind } from './store.js';

type StoreConfig = Pick<Config, 'store' | 'serverApiBaseUrl' | 'serverApiKey' | 'influxUrl' | 'influxToken' | 'influxBucket' | 'cacheDir' | 'storeQueueMax'> & Partial<Pick<Config, 'sqliteSynchronous'>>;

/**
 * Which adapter the settings select (seed rules): IMMUNE_STORE when set;
 * else SERVER_API_BASE_URL → api; else INFLUXDB_URL → influx; else the
 * embedded SQLite file. Memory only when asked for.
 */
export function selectStoreKind(c: Pick<StoreConfig, 'store' | 'serverApiBaseUrl' | 'influxUrl'>): StoreKind {
  if (c.store !== '') return c.store;
  if (c.serverApiBaseUrl !== '') return 'api';
  if (c.influxUrl !== '') return 'influx';
  return 'sqlite';
}

/** The embedded database lives in the cache directory, so one volume keeps everything. */
export function sqlitePath(cacheDir: string): string {
  return join(cacheDir, 'immune.sqlite');
}

/** The adapter alone, not opened and not wrapped (server-api fronts one of these). */
export function createStore(c: StoreConfig, log: Logger, kind: StoreKind = selectStoreKind(c)): Store {
  switch (kind) {
    case 'memory':
      return new MemoryStore();
    case 'sqlite':
      return new SqliteStore({ path: sqlitePath(c.cacheDir), log: log.child({ module: 'store' }), sync: c.sqliteSynchronous });
    case 'influx':
      if (c.influxUrl === '') throw new ImmuneError('IMM_ERR_CONFIG', 'IMMUNE_STORE=influx needs INFLUXDB_URL', { setting: 'INFLUXDB_URL' });
      return new InfluxStore({ url: c.influxUrl, token: c.influxToken, database: c.influxBucket, log: log.child({ module: 'store' }) });
    case 'api':
      if (c.serverApiBaseUrl === '') throw new ImmuneError('IMM_ERR_CONFIG', 'IMMUNE_STORE=api needs SERVER_API_BASE_URL', { setting: 'SERVER_API_BASE_URL' });
      return new ApiStore({ baseUrl: c.serverApiBaseUrl, apiKey: c.serverApiKey });
  }
}

/**
 * What the control plane calls: the selected adapter behind the resilient
 * queue (bounded, spilled under the cache directory, retried with backoff),
 * opened. A backend that is down at start does not stop the process: the
 * store starts degraded and catches up when the backend comes back.
 */
export async function openStore(c: StoreConfig, log: Logger): Promise<ResilientStore> {
  const kind = selectStoreKind(c);
  const inner = createStore(c, log, kind);
  const store = new ResilientStore(inner, { spillDir: join(c.cacheDir, 'spill'), maxQueued: c.storeQueueMax, log: log.child({ module: 'store-queue' }) });
  await store.open();
  log.info({ store: kind }, 'store opened');
  return store;
}
