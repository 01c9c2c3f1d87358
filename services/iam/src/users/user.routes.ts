import Type from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import type { Auth } from '@archipelago/platform/auth';
import { Page, PageQuery, UuidParams } from '../http/paging.ts';
import { metadataOf, refuseApiToken } from '../http/request.ts';
import { DepartmentCode, Email, NewPassword, RoleName } from '../http/schemas.ts';
import type { UserRepository } from './user.repository.ts';
import { userDto } from './user.dto.ts';
import type { UserService } from './user.service.ts';

const UserSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  display_name: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  department_code: Type.Union([Type.String(), Type.Null()]),
  roles: Type.Array(Type.String()),
  version: Type.Integer(),
  created_at: Type.String(),
  updated_at: Type.String(),
});
const Editable = {
  email: Email,
  display_name: Type.String({ minLength: 1, maxLength: 100 }),
  password: NewPassword,
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  department_code: DepartmentCode,
};
const Roles = Type.Array(RoleName, { maxItems: 50, uniqueItems: true });

/** Users and their role assignments, guarded by users:read / users:write and roles:write. */
export function userRoutes(app: HttpServer, deps: { users: UserRepository; service: UserService; auth: Auth }): void {
  const { users, service, auth } = deps;
  app.get(
    '/api/v1/users',
    {
      preHandler: auth.requirePermission('users:read'),
      schema: { tags: ['users'], querystring: Type.Object({ ...PageQuery.properties, search: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })) }), response: { 200: Page(UserSchema) } },
    },
    async (request) => {
      const { limit, offset, search } = request.query;
      const page = await users.list({ limit, offset, search });
      const roles = await users.rolesOf(page.items.map((u) => u.id));
      return { items: page.items.map((u) => userDto(u, roles.get(u.id) ?? [])), total: page.total, limit, offset };
    },
  );
  app.get('/api/v1/users/:id', { preHandler: auth.requirePermission('users:read'), schema: { tags: ['users'], params: UuidParams, response: { 200: UserSchema } } }, async (request) => {
    const user = await users.findById(request.params.id);
    if (!user) throw new AppError('NOT_FOUND', `User ${request.params.id} does not exist`);
    return userDto(user, (await users.rolesOf([user.id])).get(user.id) ?? []);
  });
  app.post(
    '/api/v1/users',
    {
      preHandler: auth.requirePermission('users:write'),
      schema: {
        tags: ['users'],
        body: Type.Object(
          {
            email: Editable.email,
            display_name: Editable.display_name,
            password: Type.Optional(Editable.password),
            status: Type.Optional(Editable.status),
            department_code: Type.Optional(Editable.department_code),
            roles: Type.Optional(Roles),
          },
          { additionalProperties: false },
        ),
        response: { 201: UserSchema },
      },
    },
    async (request, reply) => {
      if (request.body.roles?.length) await auth.authorize(request, 'roles:write');
      return reply.status(201).send(await service.create(request.body, metadataOf(request)));
    },
  );
  app.patch(
    '/api/v1/users/:id',
    {
      preHandler: auth.requirePermission('users:write'),
      schema: {
        tags: ['users'],
        params: UuidParams,
        body: Type.Object(
          {
            email: Type.Optional(Editable.email),
            display_name: Type.Optional(Editable.display_name),
            password: Type.Optional(Editable.password),
            status: Type.Optional(Editable.status),
            department_code: Type.Optional(Editable.department_code),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: UserSchema },
      },
    },
    async (request) => {
      // Whoever sets a user's password or email can sign in as them: for another user that is
      // role-level power; for oneself it takes the person, never one of their API tokens.
      const credentials = request.body.password !== undefined || request.body.email !== undefined;
      // Like deleting oneself: a session or token would lock its own owner out.
      if (request.body.status === 'disabled' && request.params.id === auth.userOf(request).id) {
        throw new AppError('CONFLICT', 'You cannot disable yourself', { fields: [{ field: 'body.status', message: 'cannot disable your own account', value: 'disabled' }] });
      }
      if (credentials && request.params.id === auth.userOf(request).id) refuseApiToken(auth.userOf(request), 'Changing your own password or email');
      else if (credentials) await auth.authorize(request, 'roles:write');
      return service.update(request.params.id, request.body, metadataOf(request));
    },
  );
  app.delete('/api/v1/users/:id', { preHandler: auth.requirePermission('users:write'), schema: { tags: ['users'], params: UuidParams } }, async (request, reply) => {
    if (request.params.id === auth.userOf(request).id) throw new AppError('CONFLICT', 'You cannot delete yourself');
    await service.remove(request.params.id, metadataOf(request));
    return reply.status(204).send();
  });
  app.put(
    '/api/v1/users/:id/roles',
    {
      preHandler: auth.requirePermission('roles:write'),
      schema: { tags: ['users'], params: UuidParams, body: Type.Object({ roles: Roles }, { additionalProperties: false }), response: { 200: UserSchema } },
    },
    async (request) => service.setRoles(request.params.id, request.body.roles, metadataOf(request)),
  );
}
