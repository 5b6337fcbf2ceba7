import { parseConfig, type Config } from '../config.js';
import { ImmuneProduct } from '../control/product.js';
import { isImmuneError } from '../domain/errors.js';
import { createLogger, type Logger } from '../log.js';
import { defaultSchedule, parseSchedule } from '../sim/chaos.js';
import { printStatus } from './status.js';

interface RunFlags {
  agents: number;
  duration?: number;
  port?: number;
  host?: string;
  chaos?: boolean;
  chaosSchedule?: string;
  seed?: number;
  newRun?: boolean;
  store?: string;
}

/** Loads settings (flags win over the environment), starts the product, and stops it cleanly on SIGINT/SIGTERM or at the end of the run. */
export async function runCommand(mode: 'run' | 'demo' | 'serve', flags: RunFlags, defaultDuration: number): Promise<number> {
  let config: Config;
  try {
    const env = { ...process.env };
    if (flags.store !== undefined) env.IMMUNE_STORE = flags.store;
    if (flags.chaos === false) env.CHAOS = 'false';
    config = parseConfig(env, {
      ...(flags.port !== undefined ? { port: flags.port } : {}),
      ...(flags.host !== undefined ? { host: flags.host } : {}),
      ...(flags.seed !== undefined ? { simSeed: flags.seed } : {}),
    });
  } catch (err) {
    if (isImmuneError(err)) {
      process.stderr.write(`immune: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const duration = flags.duration ?? (config.runDurationSeconds >= 0 ? config.runDurationSeconds : defaultDuration);
  let chaos = null;
  if (mode !== 'serve' && config.chaos) {
    try {
      const spec = flags.chaosSchedule ?? config.chaosSchedule;
      chaos = spec ? parseSchedule(spec) : defaultSchedule(duration, flags.agents);
    } catch (err) {
      process.stderr.write(`immune: ${(err as Error).message}\n`);
      return 2;
    }
  }

  const product = await ImmuneProduct.create({ config, log, agents: flags.agents, durationSeconds: duration, chaos, seed: config.simSeed, newRun: flags.newRun });
  try {
    await product.start();
  } catch (err) {
    log.fatal({ err }, `could not listen on ${config.host}:${config.port}`);
    await product.stop();
    return 1;
  }
  banner(product, mode, duration, chaos?.length ?? 0, config, log);
  const statusTimer = config.logFormat === 'text' ? setInterval(() => printStatus(product.cp), 20_000) : null;
  statusTimer?.unref();

  const signal = await Promise.race([
    product.done.then(() => 'done'),
    new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    }),
  ]);
  if (signal !== 'done') log.info({ signal }, 'shutting down');
  if (statusTimer) clearInterval(statusTimer);
  await product.stop();
  printStatus(product.cp);
  log.flush?.();
  return 0;
}

function banner(p: ImmuneProduct, mode: string, duration: number, chaos: number, config: Config, log: Logger): void {
  const key = p.keys.ingestApiKey;
  const lines = [
    '',
    `  Agent Immune (${mode}) — run ${p.cp.runId}`,
    `  Dashboard:  ${p.loginUrl}`,
    `              (one-time login link; later, paste the operator token on ${p.url}/)`,
    `  Ingest:     POST ${p.url}/api/v1/ingest with X-API-KEY ${key.slice(0, 6)}… (${p.keys.ingestKeySource === 'env' ? 'from INGEST_API_KEY' : p.persistence ? `full key in ${config.cacheDir}/state.json; set INGEST_API_KEY to choose it` : 'generated for this process; set INGEST_API_KEY to choose it'})`,
    `  Agents:     ${p.cp.engine.size === 0 && mode === 'serve' ? 'waiting for external agents' : `simulated fleet starting`}; chaos: ${chaos > 0 ? `${chaos} scheduled infections` : 'off'}; duration: ${duration > 0 ? `${duration} s` : 'until stopped'}`,
    `  Severity:   ≥ ${config.deviationRequiringApproval}σ waits for approval; below heals automatically`,
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
  log.info({ url: p.url, run_id: p.cp.runId, ingest_key_prefix: key.slice(0, 6) }, 'control plane listening');
}
