import type { HttpServer } from '../http.ts';
import type { Auth } from './authenticator.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The permission a public API route requires, when the convention does not fit. */
    permission?: string;
  }
}

/** `/api/v1/<resource>/…`: GET and HEAD need `<resource>:read`, every other method `<resource>:write`. */
export function permissionOf(method: string, url: string): string | undefined {
  const resource = /^\/api\/v\d+\/([a-z][a-z-]*)/.exec(url)?.[1];
  if (!resource) return undefined;
  return `${resource}:${method === 'GET' || method === 'HEAD' ? 'read' : 'write'}`;
}

/**
 * Guards every public API route of a service (`/api/…`) registered after this call: a valid token
 * is required (401) carrying the route's permission (403), checked before the body is parsed or validated, by the convention of `permissionOf`
 * or the route's `config.permission`. Internal routes (`/internal/…`), health and docs are left
 * alone. Call it in the composition root before registering routes, so no route can be forgotten.
 */
export function protectApiRoutes(app: HttpServer, auth: Auth): void {
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const permission = route.config?.permission ?? permissionOf(methods.find((m) => m !== 'HEAD') ?? 'GET', route.url);
    if (!permission) return;
    // On request, before the body is read and the input validated: a caller without the permission
    // learns nothing of the route's schema (401/403, never a 400 naming a field), and sends no body we parse.
    const existing = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [auth.requirePermission(permission), ...existing];
  });
}
