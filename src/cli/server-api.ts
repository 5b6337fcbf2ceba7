import { parseConfig } from '../config.js';
import { isImmuneError } from '../domain/errors.js';
import { createLogger } from '../log.js';
import { startServerApi } from '../server-api/start.js';

interface Flags {
  port?: number;
  host?: string;
  store?: string;
}

/** `immune server-api`: starts the REST persistence server (src/server-api) and stops it cleanly on SIGINT/SIGTERM. */
export async function serverApiCommand(f: Flags): Promise<number> {
  let config;
  try {
    config = parseConfig({ ...process.env, ...(f.store !== undefined ? { IMMUNE_STORE: f.store } : {}) });
  } catch (err) {
    if (isImmuneError(err)) {
      process.stderr.write(`immune: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  try {
    const api = await startServerApi({ config, log, port: f.port, host: f.host });
    process.stdout.write(`immune server-api listening on ${api.url} (store: ${api.store.kind})\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await api.close();
    return 0;
  } catch (err) {
    if (isImmuneError(err)) {
      log.error({ code: err.code }, err.message);
      return 2;
    }
    log.error({ err }, 'server API failed');
    return 1;
  }
}
