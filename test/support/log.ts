import pino, { type Logger } from 'pino';

export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** A real (pino) logger that keeps what it writes: `lines` holds each log line, parsed. */
export function capturingLogger(level = 'debug'): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { log, lines };
}
