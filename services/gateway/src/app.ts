import cors from '@fastify/cors';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, createHttpServer, RETRY_AFTER_SECONDS, toProblem, type HttpServer, type Logger } from '@archipelago/platform';
import { createAuth, remoteAuthSources, type AuthSources } from '@archipelago/platform/auth';
import type { ServiceCredentials } from '@archipelago/platform/internal-auth';
import { forwardedHeaders } from './forwarded.ts';
import { accessGuard } from './access.ts';
import { mergedDocs } from './docs.ts';
import { answerExpectations, endToEnd } from './forwarding.ts';
import { createProxy } from './proxy.ts';
import { defaultGatewaySettings, type GatewaySettings } from './settings.ts';
import { nextTraceparent } from './trace.ts';
import { balancersOf, publicPrefixes, type Lease, type Upstream } from './upstreams.ts';
import { isCanonicalPath } from './paths.ts';
import { securityHeaders } from './security-headers.ts';
import { proxyWebSockets } from './websocket.ts';

export interface GatewayOptions {
  readonly logger: Logger | false;
  readonly upstreams: readonly Upstream[];
  readonly settings?: Partial<GatewaySettings>;
  /** Where tokens are checked; by default IAM's endpoints at the `iam` upstream. */
  readonly authSources?: AuthSources;
  /** The gateway's service credentials: its calls to IAM and every forwarded request carry its token. */
  readonly credentials: ServiceCredentials;
}

/** Composition root of the gateway: routes come from the registry, never from a hand-written table. */
export async function buildApp(options: GatewayOptions): Promise<HttpServer> {
  const settings: GatewaySettings = { ...defaultGatewaySettings, ...options.settings };
  const iam = options.upstreams.find((u) => u.service === 'iam');
  const sources = options.authSources ?? (iam ? remoteAuthSources(iam.url, { credentials: options.credentials }) : undefined);
  if (!sources) throw new Error('The gateway needs IAM (an "iam" upstream) to check tokens');
  // Ready means it can do its job: verify tokens (IAM's keys fetched) and reach every upstream.
  const ready = async () => {
    await sources.keysReady?.();
    const unreachable = (await Promise.all(options.upstreams.map(async (u) => ((await live(u)) ? undefined : u.service)))).filter(Boolean);
    if (unreachable.length > 0) throw new Error(`upstreams not reachable: ${unreachable.join(', ')}`);
  };
  const app = await createHttpServer({ service: 'gateway', logger: options.logger, bodyLimit: settings.bodyLimitBytes, readiness: ready, credentials: options.credentials, ownDocs: false });
  const auth = createAuth({ sources });

  securityHeaders(app);
  answerExpectations(app, settings.bodyLimitBytes);
  // `/api/v1/auth/login/x\..\..\internal/…` would be checked as a public route and reach an
  // internal one: only canonical paths are routed.
  app.addHook('onRequest', (request, _reply, done) => {
    done(isCanonicalPath(request.url.split('?')[0]!) ? undefined : new AppError('BAD_REQUEST', 'The request path must not contain dot segments or backslashes'));
  });
  // Without configured origins browsers get no CORS headers at all: cross-origin calls are refused.
  if (settings.corsOrigins.length > 0) {
    await app.register(cors, { origin: [...settings.corsOrigins], exposedHeaders: ['x-request-id', 'retry-after', 'idempotent-replayed'], maxAge: 600 });
  }
  const { guard, admitUpgrade } = await accessGuard(app, auth, settings, publicPrefixes(options.upstreams));

  const timeout = settings.upstreamTimeoutMs;
  const proxy = createProxy({ timeoutMs: timeout, connectTimeoutMs: 2_000 });
  app.addHook('onClose', () => proxy.destroy());
  const onUpstreamError = (request: FastifyRequest, reply: FastifyReply, error: Error) => {
    const problem = timedOut(error)
      ? new AppError('UPSTREAM_TIMEOUT', `The upstream service did not answer within ${timeout} ms`, { cause: error })
      : refused(error)
        ? new AppError('UNAVAILABLE', 'The upstream service is down (restarting?); retry shortly', { cause: error })
        : new AppError('UPSTREAM_FAILED', 'The upstream service is unreachable or failed', { cause: error });
    if (problem.status === 503) void reply.header('retry-after', String(RETRY_AFTER_SECONDS));
    request.log.warn({ err: error }, problem.message);
    void reply.status(problem.status).type('application/problem+json').send(toProblem(problem, request.url.split('?')[0]));
  };

  const balancers = balancersOf(options.upstreams);
  for (const upstream of options.upstreams) {
    const balancer = balancers.get(upstream.service)!;
    const forward = async (request: FastifyRequest, reply: FastifyReply) => {
      // The upstream trusts X-Forwarded-For because this token proves the gateway set it.
      const serviceToken = await options.credentials.token(upstream.service);
      const keep = endToEnd(request.headers);
      const headers = forwardedHeaders(request.headers, {
        requestId: request.id,
        traceparent: nextTraceparent(request.headers.traceparent),
        clientAddress: request.ip,
        serviceToken,
      }, (name) => keep(name) && name !== 'host' && name !== 'content-length');
      const body = encodedBody(request.body, headers);
      // A pooled connection to a process that has just restarted fails once: a request without a
      // body that changes nothing is sent again, once.
      let retries = RETRYABLE.has(request.method) && body === undefined ? 1 : 0;
      const tried = new Set<string>();
      // One instance after another while they refuse the connection (the request never reached
      // them, so trying the next is safe for any method): 503 only once every instance refused.
      const attempt = (lease: Lease): void => {
        tried.add(lease.url);
        reply.raw.once('close', () => lease.release());
        const send = () => proxy.forward(reply, { origin: lease.url, path: request.url, method: request.method, headers, body }, (error, answered) => {
          if (!answered && retries > 0 && closedBeforeAnswer(error)) {
            retries--;
            return send();
          }
          lease.release();
          if (!answered && refused(error)) {
            lease.refused();
            const next = balancer.pick(tried);
            if (next) return attempt(next);
          }
          onUpstreamError(request, reply, error);
        });
        send();
      };
      attempt(balancer.pick(tried)!);
      return reply;
    };
    for (const { prefix } of upstream.routes) {
      app.all(prefix, { schema: { hide: true }, onRequest: guard }, forward);
      app.all(`${prefix}/*`, { schema: { hide: true }, onRequest: guard }, forward);
    }
  }
  proxyWebSockets(app, options.upstreams, balancers, options.credentials, admitUpgrade);
  await mergedDocs(app, options.upstreams);

  app.get('/health', { schema: { hide: true } }, async (_request, reply) => {
    const checks = await Promise.all(options.upstreams.map((u) => readiness(u)));
    const ready = checks.every((c) => c.status === 'ready');
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'degraded', services: Object.fromEntries(checks.map((c) => [c.service, c])) });
  });
  return app;
}

// Public: says which service is not ready and roughly why, never where services live or their errors.
// With several instances the service is ready when one is, and says how many are.
async function readiness(upstream: Upstream): Promise<{ service: string; status: 'ready' | 'unavailable'; detail?: string; instances?: { ready: number; of: number } }> {
  const checks = await Promise.all(upstream.urls.map((url) => instanceReadiness(url)));
  const ready = checks.filter((detail) => detail === undefined).length;
  const instances = upstream.urls.length > 1 ? { instances: { ready, of: upstream.urls.length } } : {};
  if (ready > 0) return { service: upstream.service, status: 'ready', ...instances };
  return { service: upstream.service, status: 'unavailable', detail: checks[0], ...instances };
}

// undefined when ready, else why not.
async function instanceReadiness(url: string): Promise<string | undefined> {
  try {
    const response = await probe(`${url}/health/ready`);
    return response.ok ? undefined : `HTTP ${response.status}`;
  } catch (error) {
    return (error as Error).name === 'TimeoutError' ? 'timed out' : 'unreachable';
  }
}

const RETRYABLE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

// The body as the upstream gets it: JSON as parsed (and checked) by the gateway, re-encoded; text as it came.
function encodedBody(body: unknown, headers: IncomingHttpHeaders): string | Buffer | undefined {
  if (body === undefined) return undefined;
  const encoded = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  headers['content-length'] = String(Buffer.byteLength(encoded));
  return encoded;
}

// undici's error when the upstream closed a kept-alive connection before answering.
function closedBeforeAnswer(error: unknown): boolean {
  return (error as { code?: unknown }).code === 'UND_ERR_SOCKET';
}

function timedOut(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

// Refused: the request never reached the upstream (it is down or restarting), so a retry is safe.
function refused(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === 'ECONNREFUSED') return true;
  }
  return false;
}

// Live when one of its instances answers.
async function live(upstream: Upstream): Promise<boolean> {
  const answers = await Promise.all(
    upstream.urls.map(async (url) => {
      try {
        return (await fetch(`${url}/health/live`, { signal: AbortSignal.timeout(2_000) })).ok;
      } catch {
        return false;
      }
    }),
  );
  return answers.includes(true);
}

// One retry: a kept-alive connection to a process that has restarted fails on first use.
async function probe(url: string): Promise<Response> {
  try {
    return await fetch(url, { signal: AbortSignal.timeout(2_000) });
  } catch {
    return fetch(url, { signal: AbortSignal.timeout(2_000) });
  }
}
