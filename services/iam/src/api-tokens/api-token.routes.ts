import Type from 'typebox';
import type { HttpServer } from '@archipelago/platform';
import type { Auth } from '@archipelago/platform/auth';
import { UuidParams } from '../http/paging.ts';
import { requirePerson } from '../http/request.ts';
import { PermissionName } from '../http/schemas.ts';
import type { ApiTokenService } from './api-token.service.ts';

const Scope = Type.Union([PermissionName, Type.String({ pattern: '^[a-z][a-z0-9-]*:\\*$' })]);

/** A user's own API tokens: create (secret shown once), list with usage, revoke; never with an API token. */
export function apiTokenRoutes(app: HttpServer, deps: { service: ApiTokenService; auth: Auth }): void {
  const { service, auth } = deps;
  // A token must not mint another (possibly broader) one, nor list or revoke its siblings.
  const ownTokens = requirePerson(auth, 'Managing API tokens');
  app.post(
    '/api/v1/auth/api-tokens',
    {
      preHandler: ownTokens,
      schema: {
        tags: ['auth'],
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 100 }),
            scopes: Type.Array(Scope, { minItems: 1, maxItems: 100 }),
            expiresInDays: Type.Integer({ minimum: 1, maximum: 365, default: 90 }),
          },
          { additionalProperties: false },
        ),
      },
    },
    // no-store: the secret is shown once, and not kept as an Idempotency-Key's response either.
    async (request, reply) => reply.status(201).header('cache-control', 'no-store').send(await service.create(auth.userOf(request).id, request.body)),
  );
  app.get('/api/v1/auth/api-tokens', { preHandler: ownTokens, schema: { tags: ['auth'] } }, async (request) => ({
    items: await service.list(auth.userOf(request).id),
  }));
  app.delete('/api/v1/auth/api-tokens/:id', { preHandler: ownTokens, schema: { tags: ['auth'], params: UuidParams } }, async (request, reply) => {
    await service.revoke(auth.userOf(request).id, request.params.id);
    return reply.status(204).send();
  });
}
