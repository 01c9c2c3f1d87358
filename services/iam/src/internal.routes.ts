import Type from 'typebox';
import type { HttpServer } from '@archipelago/platform';
import { registerExport } from '@archipelago/platform/crud';
import { OPERATOR_ONLY } from '@archipelago/platform/internal-auth';
import type { ApiTokenService } from './api-tokens/api-token.service.ts';
import type { KeyStore } from './keys/key-store.ts';
import type { RoleRepository } from './roles/role.repository.ts';
import type { SessionRepository } from './sessions/session.repository.ts';
import type { UserRepository } from './users/user.repository.ts';
import { userDto } from './users/user.dto.ts';

const Uuid = Type.String({ format: 'uuid' });

/**
 * Service-to-service endpoints: never routed by the gateway (its routes come from the registry,
 * which lists no /internal prefix), hidden from the OpenAPI document. Every one needs a service
 * token (the platform checks it); key rotation is the operator's alone.
 */
export function internalRoutes(app: HttpServer, deps: { users: UserRepository; roles: RoleRepository; sessions: SessionRepository; apiTokens: ApiTokenService; keys: KeyStore; now: () => Date }): void {
  const { users, roles, sessions, apiTokens, keys } = deps;
  // Application-layer foreign keys (docs/architecture.md#references-across-services): which of these users exist, and are they active.
  app.post(
    '/internal/v1/users/validate',
    { schema: { hide: true, body: Type.Object({ ids: Type.Array(Uuid, { maxItems: 1000 }) }, { additionalProperties: false }) } },
    async (request) => ({ users: await users.validate([...new Set(request.body.ids.map((id) => id.toLowerCase()))]) }),
  );
  // Paged export for reconciliation of copies kept elsewhere: it holds what the feed holds (emails,
  // roles, departments), so only the feed's readers may page through it.
  registerExport(app, {
    source: 'iam',
    entity: 'user',
    after: Uuid,
    read: async (after, limit) => {
      const page = await users.exportAfter(after, limit);
      const roleNames = await users.rolesOf(page.map((u) => u.id));
      return page.map((u) => userDto(u, roleNames.get(u.id) ?? []));
    },
    keyOf: (user) => user.id,
  });
  // Whether access tokens' sessions are still on, and what their users hold now: services stop a
  // signed-out session's tokens, and apply a demotion or a move before the token expires.
  app.post(
    '/internal/v1/sessions/active',
    { schema: { hide: true, body: Type.Object({ ids: Type.Array(Uuid, { maxItems: 1000 }) }, { additionalProperties: false }) } },
    async (request) => {
      const found = await activeSessions(users, sessions, [...new Set(request.body.ids.map((id) => id.toLowerCase()))], deps.now());
      return { active: found.map((s) => s.id), sessions: found };
    },
  );
  app.get('/internal/v1/authorization', { schema: { hide: true } }, async () => roles.authorizationData());
  app.post(
    '/internal/v1/api-tokens/introspect',
    { schema: { hide: true, body: Type.Object({ token: Type.String({ maxLength: 200 }) }, { additionalProperties: false }) } },
    async (request) => {
      const identity = await apiTokens.introspect(request.body.token);
      return identity ? { active: true, identity } : { active: false };
    },
  );
  // `archipelago iam rotate-keys` calls this.
  app.post('/internal/v1/signing-keys/rotate', { config: OPERATOR_ONLY, schema: { hide: true } }, async () => {
    const { kid, activeFrom } = await keys.rotate();
    return { kid, activeFrom: activeFrom.toISOString() };
  });
}

/** Sessions still on among `ids`, each with its user's current roles and department. */
export async function activeSessions(users: UserRepository, sessions: SessionRepository, ids: readonly string[], now: Date) {
  const rows = await sessions.activeAmong(ids, now);
  const roles = await users.rolesOf([...new Set(rows.map((r) => r.user_id))]);
  return rows.map((r) => ({ id: r.id, userId: r.user_id, roles: roles.get(r.user_id) ?? [], departmentCode: r.department_code }));
}
