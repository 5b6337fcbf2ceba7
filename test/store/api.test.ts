import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServerApi, type RunningServerApi } from '../../src/server-api/start.js';
import { ApiStore } from '../../src/store/api.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { findInfluxd, startInfluxd, type Influxd } from '../support/influxd.js';
import { runStoreContract } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'immune-api-store-'));
let server: RunningServerApi | null = null;
const key = 'test-server-api-key';

async function start(): Promise<ApiStore> {
  const backing = new SqliteStore({ path: join(dir, 'immune.sqlite') });
  await backing.open();
  server = await startServerApi({ config: parseConfig({}, { serverApiKey: key }), log: silentLogger(), store: backing, port: 0, host: '127.0.0.1' });
  const s = new ApiStore({ baseUrl: server.url, apiKey: key });
  await s.open();
  return s;
}

// ApiStore → real HTTP on loopback → immune server-api → real SQLite file.
runStoreContract('api (immune server-api over SQLite)', {
  open: start,
  reopen: async () => {
    const s = server!;
    await s.close();
    await s.store.close();
    return start();
  },
  cleanup: async () => {
    await server?.close();
    await server?.store.close();
    rmSync(dir, { recursive: true, force: true });
  },
});

// The client-deployed path over InfluxDB: ApiStore → immune server-api → real influxd.
const bin = findInfluxd();
if ('skip' in bin) console.warn(`ApiStore-over-InfluxDB contract suite skipped: ${bin.skip}`);
else {
  let influx: Influxd | null = null;
  let viaInflux: RunningServerApi | null = null;
  runStoreContract('api (immune server-api over a real influxd)', {
    open: async () => {
      influx = await startInfluxd(bin.path);
      viaInflux = await startServerApi({ config: parseConfig({ INFLUXDB_URL: influx.url, INFLUXDB_BUCKET: 'via_api' }, { serverApiKey: key }), log: silentLogger(), port: 0, host: '127.0.0.1' });
      return new ApiStore({ baseUrl: viaInflux.url, apiKey: key });
    },
    cleanup: async () => {
      await viaInflux?.close();
      await influx?.destroy();
    },
  });
}
