import type { HttpServer } from '@archipelago/platform';
import type { KeyStore } from './key-store.ts';

/** The public keys that verify access tokens, one `kid` each (RFC 7517). */
export function jwksRoutes(app: HttpServer, keys: KeyStore): void {
  app.get('/.well-known/jwks.json', { schema: { tags: ['auth'] } }, async (_request, reply) => {
    void reply.header('cache-control', 'public, max-age=60');
    return keys.jwks();
  });
}
