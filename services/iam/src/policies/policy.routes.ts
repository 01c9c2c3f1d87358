import Type, { type Static } from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import type { Auth } from '@archipelago/platform/auth';
import { serviceDefinitions, type ServiceDefinition } from '@archipelago/registry';
import { Page, PageQuery, UuidParams } from '../http/paging.ts';
import { metadataOf } from '../http/request.ts';
import { RoleName } from '../http/schemas.ts';
import type { RoleRepository } from '../roles/role.repository.ts';
import type { PolicyInput, PolicyRepository } from './policy.repository.ts';
import type { PolicyService } from './policy.service.ts';

const Body = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    description: Type.Optional(Type.String({ maxLength: 500 })),
    effect: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
    permission: Type.String({ pattern: '^[a-z][a-z0-9-]*:([a-z][a-z0-9-]*|\\*)$', maxLength: 100 }),
    role: Type.Union([RoleName, Type.Null()]),
    condition: Type.Optional(Type.Union([Type.Literal('always'), Type.Literal('same-department'), Type.Literal('other-department')])),
  },
  { additionalProperties: false },
);
const PolicySchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  effect: Type.String(),
  permission: Type.String(),
  role: Type.Union([Type.String(), Type.Null()]),
  condition: Type.String(),
});

/** Resources whose rows carry a department, as their services declare: the only ones a department condition applies to. */
export const DEPARTMENT_SCOPED_RESOURCES: readonly string[] = Object.values(serviceDefinitions as Record<string, ServiceDefinition>).flatMap((def) => def.departmentScoped ?? []);

// A policy no route could apply is refused, not stored and silently ignored.
function unenforceable(body: Static<typeof Body>): AppError | undefined {
  const condition = body.condition ?? 'always';
  if (condition === 'always') return undefined;
  const resource = body.permission.split(':')[0] ?? '';
  if (!DEPARTMENT_SCOPED_RESOURCES.includes(resource)) {
    const message = `a ${condition} condition applies only to ${DEPARTMENT_SCOPED_RESOURCES.join(', ')}; ${resource} has no department`;
    return new AppError('UNPROCESSABLE_REFERENCE', `Policy ${body.name} could never apply: ${message}`, { fields: [{ field: 'body.condition', message, value: condition }] });
  }
  if (body.effect === 'allow') {
    // The route's permission is checked before the row (and its department) is known.
    const message = 'a department condition can only deny; grant the permission through a role and deny it on other-department';
    return new AppError('UNPROCESSABLE_REFERENCE', `Policy ${body.name} could never apply: ${message}`, { fields: [{ field: 'body.effect', message, value: body.effect }] });
  }
  return undefined;
}

/** Allow/deny rules on top of roles (deny wins); services pick them up with the role map. Every change is audited. */
export function policyRoutes(app: HttpServer, deps: { policies: PolicyRepository; service: PolicyService; roles: RoleRepository; auth: Auth }): void {
  const { policies, service, roles, auth } = deps;
  const read = auth.requirePermission('policies:read');
  const write = auth.requirePermission('policies:write');
  const input = async (body: Static<typeof Body>): Promise<PolicyInput> => {
    const problem = unenforceable(body);
    if (problem) throw problem;
    if (!(await roles.permissionExists(body.permission))) {
      throw new AppError('UNPROCESSABLE_REFERENCE', `Policy ${body.name} names no permission any service declares`, {
        fields: [{ field: 'body.permission', message: 'is not a permission', value: body.permission }],
      });
    }
    let roleId: string | null = null;
    if (body.role !== null) {
      const role = await roles.findRole(body.role);
      if (!role) throw new AppError('VALIDATION_FAILED', `Role ${body.role} does not exist`, { fields: [{ field: 'body.role', message: 'is not a role', value: body.role }] });
      roleId = role.id;
    }
    return { name: body.name, description: body.description ?? '', effect: body.effect, permission: body.permission, roleId, condition: body.condition ?? 'always' };
  };
  const found = async (id: string) => {
    const policy = await policies.find(id);
    if (!policy) throw new AppError('NOT_FOUND', `Policy ${id} does not exist`);
    return policy;
  };

  app.get('/api/v1/policies', { preHandler: read, schema: { tags: ['policies'], querystring: PageQuery, response: { 200: Page(PolicySchema) } } }, async (request) => {
    const { limit, offset } = request.query;
    return { ...(await policies.list({ limit, offset })), limit, offset };
  });
  app.get('/api/v1/policies/:id', { preHandler: read, schema: { tags: ['policies'], params: UuidParams, response: { 200: PolicySchema } } }, async (request) => found(request.params.id));
  app.post('/api/v1/policies', { preHandler: write, schema: { tags: ['policies'], body: Body, response: { 201: PolicySchema } } }, async (request, reply) =>
    reply.status(201).send(await service.create(await input(request.body), metadataOf(request))),
  );
  app.put('/api/v1/policies/:id', { preHandler: write, schema: { tags: ['policies'], params: UuidParams, body: Body, response: { 200: PolicySchema } } }, async (request) =>
    service.replace(request.params.id, await input(request.body), metadataOf(request)),
  );
  app.delete('/api/v1/policies/:id', { preHandler: write, schema: { tags: ['policies'], params: UuidParams } }, async (request, reply) => {
    await service.remove(request.params.id, metadataOf(request));
    return reply.status(204).send();
  });
}
