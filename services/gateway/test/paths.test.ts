import { describe, expect, it } from 'vitest';
import { isCanonicalPath } from '../src/paths.ts';

// What a URL parser makes of a path, the definition the fast path must agree with.
const parsedAs = (path: string) => !/\\|%5c/i.test(path) && new URL(path, 'http://gateway.invalid').pathname === path;

describe('isCanonicalPath', () => {
  it('agrees with a URL parser on every path made of characters around the plain ones', () => {
    const alphabet = ['a', 'Z', '0', '-', '_', '~', '!', '$', '&', "'", '(', ')', '*', '+', ',', ';', '=', ':', '@', '/', '.', '%', '%2e', '%5C', '\\', ' ', '"', '<', '>', '`', '{', '}', '^', '|', 'é', '\t'];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 20_000; i++) {
      const path = `/${Array.from({ length: 1 + (next() % 8) }, () => alphabet[next() % alphabet.length]).join('')}`;
      expect(isCanonicalPath(path), path).toBe(parsedAs(path));
    }
  });

  it('refuses dot segments, backslashes and their encodings, and takes ordinary API paths', () => {
    for (const path of ['/api/v1/../internal/x', '/api/v1/./labels', '/api/v1/%2e%2e/internal', '/api\\internal', '/api/%5cinternal']) expect(isCanonicalPath(path), path).toBe(false);
    for (const path of ['/', '/api/v1/labels/MR', '/api/v1/notifications/unread-count', '/.well-known/jwks.json', '/api/v1/labels/', '/api/v1/a:b@c']) expect(isCanonicalPath(path), path).toBe(true);
  });
});
