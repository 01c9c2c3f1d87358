import Type from 'typebox';
import type { HttpServer } from '@archipelago/platform';
import type { Auth } from '@archipelago/platform/auth';
import { clientOf, requirePerson } from '../http/request.ts';
import { Email } from '../http/schemas.ts';
import { UuidParams } from '../http/paging.ts';
import type { UserRepository } from '../users/user.repository.ts';
import { userDto } from '../users/user.dto.ts';
import { LoginLockedError, type AuthService } from './auth.service.ts';

const TokenPair = Type.Object({ accessToken: Type.String(), refreshToken: Type.String(), tokenType: Type.Literal('Bearer'), expiresIn: Type.Integer() });
const RefreshBody = Type.Object({ refreshToken: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
const SessionSchema = Type.Object({
  id: Type.String(),
  current: Type.Boolean(),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  last_used_at: Type.String(),
  expires_at: Type.String(),
});

/** Sign-in, token refresh, sign-out, the caller's own profile and sessions. */
export function authRoutes(app: HttpServer, deps: { service: AuthService; auth: Auth; users: UserRepository }): void {
  const { service, auth, users } = deps;
  const ownSessions = requirePerson(auth, 'Managing sessions');
  app.post(
    '/api/v1/auth/login',
    {
      schema: {
        tags: ['auth'],
        body: Type.Object({ email: Email, password: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false }),
        response: { 200: TokenPair },
      },
    },
    async (request, reply) => {
      try {
        return await service.login(request.body.email, request.body.password, clientOf(request));
      } catch (error) {
        if (error instanceof LoginLockedError) void reply.header('retry-after', String(error.retryAfterSeconds));
        throw error;
      }
    },
  );
  app.post('/api/v1/auth/refresh', { schema: { tags: ['auth'], body: RefreshBody, response: { 200: TokenPair } } }, async (request) =>
    service.refresh(request.body.refreshToken, clientOf(request)),
  );
  app.post('/api/v1/auth/logout', { schema: { tags: ['auth'], body: RefreshBody } }, async (request, reply) => {
    await service.logout(request.body.refreshToken, clientOf(request));
    return reply.status(204).send();
  });
  app.get('/api/v1/auth/me', { preHandler: auth.requireUser, schema: { tags: ['auth'] } }, async (request) => {
    const user = auth.userOf(request);
    const record = await users.findById(user.id);
    const roles = (await users.rolesOf([user.id])).get(user.id) ?? [];
    return { ...(record ? userDto(record, roles) : { id: user.id, roles }), permissions: user.permissions };
  });
  app.get('/api/v1/auth/sessions', { preHandler: ownSessions, schema: { tags: ['auth'], response: { 200: Type.Object({ items: Type.Array(SessionSchema) }) } } }, async (request) => {
    const user = auth.userOf(request);
    const current = user.via.kind === 'jwt' ? user.via.sessionId : undefined;
    const sessions = await service.listSessions(user.id);
    return {
      items: sessions.map((s) => ({
        id: s.id,
        current: s.id === current,
        user_agent: s.user_agent,
        ip: s.ip,
        created_at: s.created_at.toISOString(),
        last_used_at: s.last_used_at.toISOString(),
        expires_at: s.expires_at.toISOString(),
      })),
    };
  });
  app.delete('/api/v1/auth/sessions/:id', { preHandler: ownSessions, schema: { tags: ['auth'], params: UuidParams } }, async (request, reply) => {
    await service.revokeSessions(auth.userOf(request).id, clientOf(request), request.params.id);
    return reply.status(204).send();
  });
  app.delete('/api/v1/auth/sessions', { preHandler: ownSessions, schema: { tags: ['auth'] } }, async (request, reply) => {
    await service.revokeSessions(auth.userOf(request).id, clientOf(request));
    return reply.status(204).send();
  });
}
