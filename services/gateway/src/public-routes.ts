/**
 * Routes the gateway passes on without a token: signing in and what leads to it, the public
 * keys, and Socket.IO (the notification service checks the token in the Socket.IO handshake).
 * Everything else under a registry prefix needs a valid access token or API token.
 */
export const PUBLIC_ROUTES = [
  '/api/v1/auth/login',
  '/api/v1/auth/refresh',
  '/api/v1/auth/logout',
  '/api/v1/auth/password-reset',
  '/.well-known/jwks.json',
  '/socket.io',
] as const;

export const isPublicPath = (path: string): boolean => PUBLIC_ROUTES.some((p) => path === p || path.startsWith(`${p}/`));

/** The only routes whose connections may be upgraded (to WebSocket). */
export const WEBSOCKET_ROUTES = ['/socket.io'] as const;

/**
 * Whether a request path is already in the form a URL parser would give it: no `..` or `.`
 * segments, no backslashes (which parsers read as `/`). Anything else is refused, so the path the
 * gateway checks is the path the service receives.
 */
export function isCanonicalPath(path: string): boolean {
  if (/\\|%5c/i.test(path)) return false;
  return new URL(path, 'http://gateway.invalid').pathname === path;
}
