import pino, { type Logger } from 'pino';

/** A logger that keeps every line it writes (all levels), for tests that read a service's log. */
export function capturedLogger(service: string): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ name: service, level: 'trace' }, { write: (line: string) => void lines.push(line) });
  return { logger, lines };
}
