import { InfluxStore } from '../../src/store/influx.js';
import { findInfluxd, startInfluxd, type Influxd } from '../support/influxd.js';
import { runStoreContract } from './contract.js';

const bin = findInfluxd();
let server: Influxd | null = null;

if ('skip' in bin) {
  // Said out loud so a green run without InfluxDB is never mistaken for a tested adapter.
  console.warn(`InfluxDB contract suite skipped: ${bin.skip}`);
} else {
  runStoreContract('influx (real influxd 1.x)', {
    open: async () => {
      server = await startInfluxd(bin.path);
      const s = new InfluxStore({ url: server.url, database: 'immune_test' });
      await s.open();
      return s;
    },
    reopen: async () => {
      const s = new InfluxStore({ url: server!.url, database: 'immune_test' });
      await s.open();
      return s;
    },
    cleanup: async () => server?.destroy(),
  });
}
