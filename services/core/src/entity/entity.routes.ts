import type { FastifyRequest } from 'fastify';
import Type, { type TProperties, type TSchema } from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import { changeOf, permissionOf, type Auth } from '@archipelago/platform/auth';
import { departmentAccess } from '../access/department.ts';
import { entityDto, scopeOf, type CoreEntity } from './entity.definition.ts';
import type { EntityRepository } from './entity.repository.ts';
import type { EntityService } from './entity.service.ts';

type Values = Record<string, unknown>;
const Id = Type.String({ format: 'uuid' });

// Request and response schemas of one entity, derived from its columns.
function schemasOf(entity: CoreEntity) {
  const scope = scopeOf(entity);
  const body = Object.entries(entity.columns).filter(([column]) => column !== scope);
  const optional = new Set(entity.optionalOnCreate);
  const immutable = new Set(entity.immutable);
  const scopeParams: TProperties = scope ? { [scope]: Id } : {};
  return {
    dto: Type.Object({ id: Id, ...entity.columns, version: Type.Integer(), created_at: Type.String({ format: 'date-time' }), updated_at: Type.String({ format: 'date-time' }) }),
    scopeParams: Type.Object(scopeParams),
    rowParams: Type.Object({ ...scopeParams, id: Id }),
    create: Type.Object(Object.fromEntries(body.map(([column, schema]) => [column, optional.has(column) ? Type.Optional(schema) : schema])), { additionalProperties: false }),
    patch: Type.Object(
      Object.fromEntries(body.filter(([column]) => !immutable.has(column)).map(([column, schema]) => [column, Type.Optional(schema)])),
      { additionalProperties: false, minProperties: 1 },
    ),
    list: Type.Object({
      limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
      offset: Type.Integer({ minimum: 0, default: 0 }),
      ...Object.fromEntries(entity.filters.filter((column) => column !== scope).map((column) => [column, Type.Optional(entity.columns[column] as TSchema)])),
    }),
  };
}

/**
 * The REST API of one core entity: paged list with filters, read, create, PATCH, DELETE. An entity
 * with a `department_code` column is under department policies on every route (see `departmentAccess`).
 */
export function entityRoutes(app: HttpServer, auth: Auth, rows: EntityRepository, service: EntityService): void {
  const entity = rows.entity;
  const scope = scopeOf(entity);
  const schemas = schemasOf(entity);
  const tags = [entity.table];
  const toDto = entityDto.bind(null, entity);
  // A row under a nested path belongs to the parent the path names.
  const inScope = (row: Values, params: Values) => !scope || row[scope] === params[scope];
  const departmental = 'department_code' in entity.columns;
  const access = departmentAccess(auth, (permissionOf('GET', entity.path) ?? entity.table).replace(/:read$/, ''));
  const departmentOf = (values: Values) => (values.department_code as string | null | undefined) ?? null;
  const notFound = (id: string) => () => new AppError('NOT_FOUND', `${entity.title} ${id} does not exist`);
  // Runs on the locked row: a row the user may not read is not found, one they may not write is a 403.
  const allowed = (request: FastifyRequest, id: string) => async (current: Values, changes: Values) => {
    if (!departmental) return;
    await access.requireWritable(request, departmentOf(current), notFound(id));
    if ('department_code' in changes && departmentOf(changes) !== departmentOf(current)) await access.requireWriteTo(request, departmentOf(changes));
  };

  app.get(
    entity.path,
    {
      schema: {
        tags,
        params: schemas.scopeParams,
        querystring: schemas.list,
        response: { 200: Type.Object({ items: Type.Array(schemas.dto), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() }) },
      },
    },
    async (request) => {
      const { limit, offset, ...query } = request.query as { limit: number; offset: number } & Values;
      const filters = { ...Object.fromEntries(entity.filters.map((column) => [column, query[column]])), ...(request.params) };
      const where = departmental ? await access.listScope(request, filters) : filters;
      if (!where) return { items: [], total: 0, limit, offset };
      const page = await rows.list({ limit, offset, where });
      return { items: page.items.map(toDto), total: page.total, limit, offset };
    },
  );
  app.get(`${entity.path}/:id`, { schema: { tags, params: schemas.rowParams, response: { 200: schemas.dto } } }, async (request) => {
    const params = request.params as Values & { id: string };
    const row = await rows.findById(params.id);
    if (!row || !inScope(row, params)) throw notFound(params.id)();
    if (departmental) await access.requireReadable(request, departmentOf(row), notFound(params.id));
    return toDto(row);
  });
  app.post(entity.path, { schema: { tags, params: schemas.scopeParams, body: schemas.create, response: { 201: schemas.dto } } }, async (request, reply) => {
    const values = { ...(request.body), ...(request.params) };
    if (departmental) await access.requireWriteTo(request, departmentOf(values));
    const created = await service.create(values, changeOf(request));
    return reply.status(201).send(created);
  });
  app.patch(`${entity.path}/:id`, { schema: { tags, params: schemas.rowParams, body: schemas.patch, response: { 200: schemas.dto } } }, async (request) => {
    const { id, ...scoped } = request.params as Values & { id: string };
    return service.update(id, request.body, changeOf(request), scoped, allowed(request, id));
  });
  app.delete(`${entity.path}/:id`, { schema: { tags, params: schemas.rowParams } }, async (request, reply) => {
    const { id, ...scoped } = request.params as Values & { id: string };
    await service.remove(id, changeOf(request), scoped, allowed(request, id));
    return reply.status(204).send();
  });
}
