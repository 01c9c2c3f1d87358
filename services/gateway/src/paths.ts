/** Whether `path` is `prefix` or lies under it (`/api/v1/auth/login/x` is under `/api/v1/auth/login`). */
export const isUnder = (path: string, prefix: string): boolean => path === prefix || path.startsWith(`${prefix}/`);

const PLAIN_PATH = /^(?:\/[A-Za-z0-9\-_~!$&'()*+,;=:@]+)+\/?$/;

/**
 * Whether a request path is already in the form a URL parser would give it: no `..` or `.`
 * segments, no backslashes (which parsers read as `/`). Anything else is refused, so the path the
 * gateway checks is the path the service receives.
 */
export function isCanonicalPath(path: string): boolean {
  // Characters a URL parser keeps as they are (no dot, no percent, no backslash): canonical without parsing.
  if (PLAIN_PATH.test(path)) return true;
  if (/\\|%5c/i.test(path)) return false;
  return new URL(path, 'http://gateway.invalid').pathname === path;
}
