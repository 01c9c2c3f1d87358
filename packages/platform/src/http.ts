import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { isConnectionError } from './db.ts';
import { AppError, toProblem, type FieldProblem } from './errors.ts';

/** A Fastify instance whose route schemas are TypeBox schemas (typed handlers, OpenAPI output). */
export type HttpServer = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

export interface HttpServerOptions {
  /** Service name, in logs and in the OpenAPI document. */
  readonly service: string;
  readonly logger: FastifyBaseLogger | false;
  /** Resolves when the service can take traffic (e.g. its database answers); throws otherwise. */
  readonly readiness?: () => Promise<void>;
  /** Largest accepted request body in bytes (default 1 MiB). */
  readonly bodyLimit?: number;
  /** How long requests in flight may finish when the server closes; then connections are cut. */
  readonly closeGraceMs?: number;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;
/** Seconds a client is told to wait after a 503 (a restarting dependency is usually back by then). */
export const RETRY_AFTER_SECONDS = 2;

/**
 * Creates a service's HTTP server: request ids, problem+json errors, `/health/live`,
 * `/health/ready` and the OpenAPI document at `/docs/json`. Register routes after awaiting it.
 *
 * @example
 * const app = await createHttpServer({ service: 'core', logger, readiness: () => checkDatabase(db) });
 * app.get('/api/v1/orders', { schema: { querystring: Type.Object({ limit: Type.Integer() }) } }, handler);
 */
export async function createHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const app = Fastify({
    loggerInstance: options.logger === false ? undefined : options.logger,
    logger: options.logger === false ? false : undefined,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // genReqId reads x-request-id itself so that only well-formed ids are trusted.
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    ajv: { customOptions: { allErrors: true, coerceTypes: 'array', removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>() as HttpServer;

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // Graceful, but bounded: requests in flight get a grace period, then every connection still
  // open (a peer that died mid-request, one that never sent a request) is cut, so closing
  // never hangs for the 60 s of Node's header timeout.
  app.addHook('preClose', async () => {
    setTimeout(() => app.server.closeAllConnections(), options.closeGraceMs ?? 2_000).unref();
  });
  app.setErrorHandler((error: FastifyError, request, reply) => sendProblem(request, reply, classify(error, request)));
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, new AppError('NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}`)),
  );

  await app.register(swagger, {
    openapi: {
      info: { title: `Archipelago ${options.service}`, version: '0.1.0' },
    },
  });

  const started = Date.now();
  app.get('/health/live', { schema: { hide: true } }, () => ({
    status: 'ok',
    service: options.service,
    pid: process.pid,
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
  }));
  app.get('/health/ready', { schema: { hide: true } }, async () => {
    try {
      await options.readiness?.();
    } catch (error) {
      // The cause (hosts, ports, authentication errors) goes to the log, not to the client.
      app.log.warn({ err: error }, 'not ready');
      throw new AppError('UNAVAILABLE', `${options.service} is not ready; its log says why`, { cause: error });
    }
    return { status: 'ready', service: options.service };
  });
  app.get('/docs/json', { schema: { hide: true } }, () => app.swagger());
  return app;
}

async function sendProblem(request: FastifyRequest, reply: FastifyReply, error: AppError): Promise<void> {
  if (error.status === 503) request.log.warn({ err: describeCause(error), code: error.code }, error.message);
  else if (error.status >= 500) request.log.error({ err: error.cause ?? error, code: error.code }, error.message);
  if (error.status === 503 && !reply.hasHeader('retry-after')) void reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  await reply
    .status(error.status)
    .type('application/problem+json')
    .send(toProblem(error, request.url.split('?')[0]));
}

// An outage makes hundreds of 503s: one line each, without a stack.
function describeCause(error: AppError): string {
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  return cause ? `${typeof cause.code === 'string' ? `${cause.code}: ` : ''}${String(cause.message)}` : error.message;
}

// Maps whatever a route or Fastify threw onto the one error type.
function classify(error: FastifyError, request: FastifyRequest): AppError {
  if (error instanceof AppError) return error;
  if (error.validation) {
    const fields: FieldProblem[] = error.validation.map((v) => {
      const missing = (v.params as { missingProperty?: string }).missingProperty;
      const pointer = [error.validationContext, ...v.instancePath.split('/').filter(Boolean), ...(missing ? [missing] : [])].join('.');
      return { field: pointer, message: v.message ?? 'is invalid' };
    });
    return new AppError('VALIDATION_FAILED', `Invalid ${error.validationContext ?? 'request'}: ${fields.map((f) => `${f.field} ${f.message}`).join('; ')}`, { fields });
  }
  if (error.statusCode === 413) return new AppError('PAYLOAD_TOO_LARGE', error.message);
  if (error.statusCode === 415) return new AppError('UNSUPPORTED_MEDIA_TYPE', error.message);
  if (error.statusCode === 405) return new AppError('METHOD_NOT_ALLOWED', error.message);
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new AppError('BAD_REQUEST', error.message);
  }
  if (isConnectionError(error)) return new AppError('UNAVAILABLE', 'A dependency (the database or another service) is unreachable right now; retry shortly', { cause: error });
  return new AppError('INTERNAL', `Unhandled error in ${request.method} ${request.url}`, { cause: error });
}
