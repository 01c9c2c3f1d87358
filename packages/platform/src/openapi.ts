import type { FastifySchema, RouteOptions } from 'fastify';
import type { OpenAPIV3 } from 'openapi-types';
import { errorStatus, type ErrorCode } from './errors.ts';

// Every operation of every service documents the same problem+json errors and has a stable
// operationId, derived here once from the route (method, path, which parts it validates) so that
// generated clients get good names and error types without a route listing them by hand.

/** RFC 9457 problem details as this platform renders them (see errors.ts). */
export const ProblemSchema: OpenAPIV3.SchemaObject = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string', format: 'uri' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', enum: Object.keys(errorStatus) },
    instance: { type: 'string' },
    errors: {
      type: 'array',
      items: { type: 'object', required: ['field', 'message'], properties: { field: { type: 'string', description: 'e.g. body.email, querystring.limit' }, message: { type: 'string' }, value: {} } },
    },
  },
  additionalProperties: true,
};

/** A documented error response whose body is a problem. */
export const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

const describe: Partial<Record<number, string>> = {
  400: 'The request is malformed or a field is invalid (`errors` names each one)',
  401: 'No valid access token or API token',
  403: 'The token lacks the permission, or a policy denies it',
  404: 'No such resource',
  409: 'The change conflicts with the current state',
  413: 'The body is too large',
  415: 'The body is not JSON',
  422: 'A reference (a code or an id owned elsewhere) does not exist',
  500: 'Unexpected error (its request id is in the logs)',
  503: 'A dependency is unavailable; retry after Retry-After',
};

/** The error statuses a route can answer, by what it is: every rule here applies to every route alike. */
export function errorStatuses(method: string, url: string, schema: FastifySchema | undefined): number[] {
  const statuses = [400, 500, 503];
  if (url.startsWith('/api/')) statuses.push(401, 403);
  if (url.includes(':') || url.includes('{')) statuses.push(404);
  if (method !== 'GET' && method !== 'HEAD') statuses.push(409, 422);
  if (schema?.body) statuses.push(413, 415);
  return statuses.sort((a, b) => a - b);
}

/**
 * `GET /api/v1/resources/:resource_id/addresses` → `getResourcesByResourceIdAddresses`: unique per
 * method and path, stable as long as the path is.
 */
export function operationIdOf(method: string, url: string): string {
  const words = url
    .split('/')
    .filter((segment) => segment && !/^v\d+$/.test(segment) && segment !== 'api')
    .flatMap((segment) => (segment.startsWith(':') ? ['by', ...segment.slice(1).split(/[-_.]/)] : segment.split(/[-_.]/)))
    .filter(Boolean)
    .map((word) => word[0]!.toUpperCase() + word.slice(1));
  return `${method.toLowerCase()}${words.join('')}`;
}

/** @fastify/swagger's per-route transform: adds the operationId and the problem responses. */
export function documentRoute({ schema: given, url, route }: { schema: FastifySchema | undefined; url: string; route: RouteOptions }): { schema: FastifySchema; url: string } {
  const schema = given ?? {};
  if ((schema as { hide?: boolean }).hide) return { schema, url };
  const method = (Array.isArray(route.method) ? route.method.find((m) => m !== 'HEAD') : route.method) ?? 'GET';
  const responses: Record<string, unknown> = { ...(schema.response as Record<string, unknown> | undefined) };
  for (const status of errorStatuses(method, route.url, schema)) {
    responses[String(status)] ??= problemResponse(describe[status] ?? (Object.keys(errorStatus).find((code) => errorStatus[code as ErrorCode] === status) ?? 'Error'));
  }
  return { schema: { ...schema, operationId: (schema as { operationId?: string }).operationId ?? operationIdOf(method, route.url), response: responses }, url };
}
