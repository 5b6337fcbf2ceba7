import { parseConfig } from '../config.js';
import { isImmuneError } from '../domain/errors.js';

interface Flags {
  port?: number;
  host?: string;
  store?: string;
}

/** `immune server-api`: wired to src/server-api once it lands. */
export async function serverApiCommand(_f: Flags): Promise<number> {
  try {
    parseConfig(process.env);
  } catch (err) {
    if (isImmuneError(err)) {
      process.stderr.write(`immune: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  process.stderr.write('immune server-api: not available in this build yet\n');
  return 1;
}
