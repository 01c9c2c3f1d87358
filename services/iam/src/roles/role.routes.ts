import Type from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import type { Auth } from '@archipelago/platform/auth';
import { Page, PageQuery } from '../http/paging.ts';
import { metadataOf } from '../http/request.ts';
import { PermissionName, RoleName } from '../http/schemas.ts';
import type { RoleRepository } from './role.repository.ts';
import { roleDto, type RoleService } from './role.service.ts';

const RoleSchema = Type.Object({ id: Type.String(), name: Type.String(), description: Type.String(), permissions: Type.Array(Type.String()), version: Type.Integer() });
const PermissionSchema = Type.Object({ id: Type.String(), name: Type.String(), description: Type.String() });
const Permissions = Type.Array(PermissionName, { maxItems: 500, uniqueItems: true });
const Description = Type.String({ maxLength: 500 });
const NameParams = Type.Object({ name: RoleName });

/** Roles with their permissions, and the permission catalogue; roles:read / roles:write. */
export function roleRoutes(app: HttpServer, deps: { roles: RoleRepository; service: RoleService; auth: Auth }): void {
  const { roles, service, auth } = deps;
  const read = auth.requirePermission('roles:read');
  const write = auth.requirePermission('roles:write');

  app.get('/api/v1/roles', { preHandler: read, schema: { tags: ['roles'], querystring: PageQuery, response: { 200: Page(RoleSchema) } } }, async (request) => {
    const { limit, offset } = request.query;
    const page = await roles.listRoles({ limit, offset });
    const permissions = await roles.permissionsOf(page.items.map((r) => r.id));
    return { items: page.items.map((r) => roleDto(r, permissions.get(r.id) ?? [])), total: page.total, limit, offset };
  });
  app.get('/api/v1/roles/:name', { preHandler: read, schema: { tags: ['roles'], params: NameParams, response: { 200: RoleSchema } } }, async (request) => {
    const role = await roles.findRole(request.params.name);
    if (!role) throw new AppError('NOT_FOUND', `Role ${request.params.name} does not exist`);
    return roleDto(role, (await roles.permissionsOf([role.id])).get(role.id) ?? []);
  });
  app.post(
    '/api/v1/roles',
    {
      preHandler: write,
      schema: {
        tags: ['roles'],
        body: Type.Object({ name: RoleName, description: Type.Optional(Description), permissions: Type.Optional(Permissions) }, { additionalProperties: false }),
        response: { 201: RoleSchema },
      },
    },
    async (request, reply) => reply.status(201).send(await service.create(request.body, metadataOf(request))),
  );
  app.patch(
    '/api/v1/roles/:name',
    { preHandler: write, schema: { tags: ['roles'], params: NameParams, body: Type.Object({ description: Description }, { additionalProperties: false }), response: { 200: RoleSchema } } },
    async (request) => service.describe(request.params.name, request.body.description),
  );
  app.put(
    '/api/v1/roles/:name/permissions',
    { preHandler: write, schema: { tags: ['roles'], params: NameParams, body: Type.Object({ permissions: Permissions }, { additionalProperties: false }), response: { 200: RoleSchema } } },
    async (request) => service.setPermissions(request.params.name, request.body.permissions, metadataOf(request)),
  );
  app.delete('/api/v1/roles/:name', { preHandler: write, schema: { tags: ['roles'], params: NameParams } }, async (request, reply) => {
    await service.remove(request.params.name, metadataOf(request));
    return reply.status(204).send();
  });

  app.get('/api/v1/permissions', { preHandler: read, schema: { tags: ['roles'], querystring: PageQuery, response: { 200: Page(PermissionSchema) } } }, async (request) => {
    const { limit, offset } = request.query;
    return { ...(await roles.listPermissions({ limit, offset })), limit, offset };
  });
  app.post(
    '/api/v1/permissions',
    { preHandler: write, schema: { tags: ['roles'], body: Type.Object({ name: PermissionName, description: Type.Optional(Description) }, { additionalProperties: false }), response: { 201: PermissionSchema } } },
    async (request, reply) => {
      const created = await roles.insertPermission({ name: request.body.name, description: request.body.description ?? '' });
      if (!created) throw new AppError('CONFLICT', `Permission ${request.body.name} already exists`, { fields: [{ field: 'body.name', message: 'is taken', value: request.body.name }] });
      return reply.status(201).send(created);
    },
  );
  app.delete('/api/v1/permissions/:name', { preHandler: write, schema: { tags: ['roles'], params: Type.Object({ name: PermissionName }) } }, async (request, reply) => {
    const outcome = await roles.deletePermission(request.params.name);
    if (outcome === 'missing') throw new AppError('NOT_FOUND', `Permission ${request.params.name} does not exist`);
    if (outcome === 'in-use') throw new AppError('CONFLICT', `Permission ${request.params.name} is held by a role; remove it from every role first`);
    return reply.status(204).send();
  });
}
