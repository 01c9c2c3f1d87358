import pino, { type DestinationStream, type Logger } from 'pino';
import { redactQuery } from './redact.ts';

/** Structured JSON logs, one logger per process, named after the service. */
export function createLogger(service: string, level: string = process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  const options = { name: service, level, base: { service, pid: process.pid }, serializers: { req: requestSummary } };
  return destination ? pino(options, destination) : pino(options);
}

// Fastify's request summary, with secret query parameters redacted (see redact.ts).
function requestSummary(request: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }) {
  return { method: request.method, url: request.url === undefined ? undefined : redactQuery(request.url), host: request.host, remoteAddress: request.ip, remotePort: request.socket?.remotePort };
}

export type { Logger };
