import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/**
 * Fields the text format leaves out: the lifecycle and chaos messages already say them in words, and
 * a terminal operator reading `immune run` wants one line per decision, not a dozen. JSON keeps all.
 */
const TEXT_IGNORED = 'pid,hostname,module,agent_id,event,actor,sigma,severity,anomalies,diagnosis,confidence,action,trigger,group,infection,magnitude';

/** Root logger. Secrets in headers are redacted; text format is synchronous so lines interleave correctly with the CLI. */
export function createLogger(opts: { level: string; format: 'text' | 'json' }, destination?: NodeJS.WritableStream): Logger {
  const base = {
    level: opts.level,
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', '*.api_key', '*.token'], censor: '[redacted]' },
  };
  if (opts.format === 'json') return destination ? pino(base, destination as pino.DestinationStream) : pino(base);
  return pino(base, pretty({ colorize: process.stdout.isTTY === true, sync: true, translateTime: 'HH:MM:ss.l', ignore: TEXT_IGNORED, destination: (destination as never) ?? 1 }));
}

/** A logger that discards everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
