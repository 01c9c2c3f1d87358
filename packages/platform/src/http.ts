import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { isConnectionError, isTransactionConflict } from './db.ts';
import { AppError, toProblem, type FieldProblem } from './errors.ts';
import type { ServiceCredentials } from './internal-auth/credentials.ts';
import { protectInternalRoutes } from './internal-auth/guard.ts';
import { registerIdempotency, type IdempotencyOptions } from './idempotency/hook.ts';
import { documentRoute, ProblemSchema } from './openapi.ts';
import { redactQuery } from './redact.ts';
import { clientErrorHandler, dataException, drainRefusedBody, frameworkError, refuseLongUrls, refuseNulBytes, registerJsonParser, requestValidatorCompiler } from './input.ts';

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
  /** Checks service tokens: every `/internal/` route needs one for this service (without credentials, all are refused). */
  readonly credentials?: ServiceCredentials;
  /**
   * `Idempotency-Key` on every write under `/api/`, kept in this database's `idempotency_keys`
   * (a service migration creates it with `createIdempotencyKeysTableV1`).
   */
  readonly idempotency?: IdempotencyOptions;
  /** Serve this server's own OpenAPI document at `/docs/json` (default true; the gateway serves the merged one there). */
  readonly ownDocs?: boolean;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * One access-log line per request, when it is answered: what was asked (`req`, secrets redacted by
 * the logger's serializer), what was answered (`res`) and how long it took. Fastify's separate
 * "incoming request" line is not written: it doubled the log's volume and cost every request a
 * serialization for nothing the completion line cannot carry.
 */
class AccessLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}
/** Seconds a client is told to wait after a 503 (a restarting dependency is usually back by then). */
export const RETRY_AFTER_SECONDS = 2;

/**
 * Creates a service's HTTP server: request ids, problem+json errors, service tokens required on
 * every `/internal/` route (see internal-auth), `/health/live`,
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
    // Fastify's own refusals (a malformed URL; Node's parser: headers too large) are problems too.
    frameworkErrors: (error, request, reply) => void sendProblem(request, reply, frameworkError(error)),
    clientErrorHandler,
    logController: new AccessLog(),
  }).withTypeProvider<TypeBoxTypeProvider>() as HttpServer;
  // Hostile input is a 400 naming the field, never a 500 from PostgreSQL (see input.ts).
  app.setValidatorCompiler(requestValidatorCompiler());
  registerJsonParser(app);
  app.addHook('onRequest', refuseLongUrls);
  app.addHook('preValidation', refuseNulBytes);
  app.addHook('onSend', drainRefusedBody);

  protectInternalRoutes(app, { service: options.service, credentials: options.credentials });
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    done(null, payload);
  });
  if (options.idempotency) registerIdempotency(app, options.idempotency);
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
      components: { schemas: { Problem: ProblemSchema } },
    },
    transform: documentRoute,
  });

  const started = Date.now();
  // Polled every second by the supervisor and the gateway: only its warnings and errors are logged,
  // so a service's log (and the lines the supervisor shows when it dies) hold what it did.
  app.get('/health/live', { schema: { hide: true }, logLevel: 'warn' }, () => ({
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
  if (options.ownDocs !== false) app.get('/docs/json', { schema: { hide: true } }, () => app.swagger());
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
  const data = dataException(error);
  if (data) {
    request.log.warn({ err: error }, 'PostgreSQL refused a value that the request schema let through');
    return data;
  }
  if (error.validation) {
    const fields: FieldProblem[] = error.validation.slice(0, 20).map((v) => {
      const { missingProperty, additionalProperty } = v.params as { missingProperty?: string; additionalProperty?: string };
      const extra = missingProperty ?? additionalProperty;
      const pointer = [error.validationContext, ...v.instancePath.split('/').filter(Boolean), ...(extra ? [extra] : [])].join('.');
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
  if (isTransactionConflict(error)) {
    return new AppError('UNAVAILABLE', 'The database rolled this request back to settle a conflict with a concurrent one (a deadlock or a serialization failure); nothing was kept, retry it', { cause: error });
  }
  return new AppError('INTERNAL', `Unhandled error in ${request.method} ${redactQuery(request.url)}`, { cause: error });
}
