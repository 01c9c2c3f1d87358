import type { FastifyInstance, FastifyRequest } from 'fastify';
import { loadRegistry } from '@archipelago/registry';
import { AppError } from '../errors.ts';
import { OPERATOR, SERVICE_TOKEN_HEADER, ServiceTokenError, type ServiceCredentials } from './credentials.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The principal whose valid service token the request carries, if any. */
    servicePrincipal?: string;
  }
  interface FastifyContextConfig {
    /** Principals an `/internal/` route accepts; unset: any principal with a valid token. */
    callers?: readonly string[];
  }
}

/** Route config of operator actions (key rotation, dead-letter replay, reconcile, running a job). */
export const OPERATOR_ONLY = { callers: [OPERATOR] } as const;

/**
 * The principals allowed to read `source`'s event feed: the services the registry has subscribe to
 * it (their `consumes`, their lookups' producers, the identity provider's changes), and the operator.
 */
export function feedReaders(source: string): string[] {
  const consumers = loadRegistry().services.filter((s) => s.subscriptions.some((c) => c.from === source)).map((s) => s.key);
  return [...consumers, OPERATOR];
}

/** An `/internal/` route as registered, with the principals it is limited to (undefined: any). */
export interface InternalRoute {
  readonly method: string;
  readonly url: string;
  readonly callers: readonly string[] | undefined;
}

const routesOf = new WeakMap<FastifyInstance, InternalRoute[]>();

/** Every `/internal/` route of an app, for tests and tools that must cover them all. */
export function internalRoutesOf(app: FastifyInstance): readonly InternalRoute[] {
  return routesOf.get(app) ?? [];
}

const isInternal = (path: string | undefined) => path !== undefined && (path === '/internal' || path.startsWith('/internal/'));

/**
 * One rule for every route under `/internal/`, including those added later: a valid service
 * token whose audience is this service (else 401), from a principal the route's `callers`
 * allows (else 403). On any other route a token is optional: a valid one sets
 * `servicePrincipal` (e.g. `gateway`, which makes forwarded headers trustworthy), an invalid
 * one is ignored (and logged), so the request counts as an unknown peer's.
 */
export function protectInternalRoutes(app: FastifyInstance, options: { service: string; credentials?: ServiceCredentials }): void {
  const { credentials } = options;
  if (credentials && credentials.principal !== options.service) {
    throw new Error(`${options.service} was given ${credentials.principal}'s credentials`);
  }
  const routes: InternalRoute[] = [];
  routesOf.set(app, routes);
  app.addHook('onRoute', (route) => {
    if (!isInternal(route.url)) return;
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routes.push({ method, url: route.url, callers: route.config?.callers });
    }
  });
  app.addHook('onRequest', async (request) => {
    const internal = isInternal(request.routeOptions.url) || isInternal(decodedPath(request));
    const presented = request.headers[SERVICE_TOKEN_HEADER];
    if (presented === undefined) {
      if (internal) throw new AppError('UNAUTHENTICATED', `Internal routes need a service token in ${SERVICE_TOKEN_HEADER}`);
      return;
    }
    try {
      request.servicePrincipal = await verified(credentials, options.service, presented);
    } catch (error) {
      if (internal) throw error;
      request.log.warn({ reason: (error as Error).message }, 'ignored an invalid service token: the caller counts as an unknown peer');
      return;
    }
    const callers = request.routeOptions.config.callers;
    if (internal && callers && !callers.includes(request.servicePrincipal)) {
      throw new AppError('FORBIDDEN', `${request.servicePrincipal} may not call ${request.method} ${request.routeOptions.url}; only ${callers.join(', ')} may`);
    }
  });
}

async function verified(credentials: ServiceCredentials | undefined, service: string, presented: string | string[]): Promise<string> {
  if (!credentials) throw new AppError('UNAUTHENTICATED', `${service} has no service credentials configured, so it accepts no service token`);
  if (typeof presented !== 'string') throw new AppError('UNAUTHENTICATED', `Send one ${SERVICE_TOKEN_HEADER} header`);
  try {
    return await credentials.verify(presented);
  } catch (error) {
    if (error instanceof ServiceTokenError) throw new AppError('UNAUTHENTICATED', error.detail);
    throw error;
  }
}

function decodedPath(request: FastifyRequest): string {
  const path = request.url.split('?')[0]!;
  if (!path.includes('%')) return path;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/**
 * The address of the client: the gateway's X-Forwarded-For when the request carries the
 * gateway's valid service token, the socket's peer otherwise (anyone else may write that header).
 */
export function clientAddress(request: FastifyRequest): string {
  if (request.servicePrincipal === 'gateway') {
    const forwarded = request.headers['x-forwarded-for'];
    const last = typeof forwarded === 'string' ? forwarded.split(',').map((h) => h.trim()).filter(Boolean).at(-1) : undefined;
    if (last) return last;
  }
  return request.ip;
}
