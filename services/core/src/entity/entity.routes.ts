import Type, { type TProperties, type TSchema } from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import { changeOf } from '@archipelago/platform/auth';
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

/** The REST API of one core entity: paged list with filters, read, create, PATCH, DELETE. */
export function entityRoutes(app: HttpServer, rows: EntityRepository, service: EntityService): void {
  const entity = rows.entity;
  const scope = scopeOf(entity);
  const schemas = schemasOf(entity);
  const tags = [entity.table];
  const toDto = entityDto.bind(null, entity);
  // A row under a nested path belongs to the parent the path names.
  const inScope = (row: Values, params: Values) => !scope || row[scope] === params[scope];

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
      const where = Object.fromEntries(entity.filters.map((column) => [column, query[column]]));
      const page = await rows.list({ limit, offset, where: { ...where, ...request.params } });
      return { items: page.items.map(toDto), total: page.total, limit, offset };
    },
  );
  app.get(`${entity.path}/:id`, { schema: { tags, params: schemas.rowParams, response: { 200: schemas.dto } } }, async (request) => {
    const params = request.params as Values & { id: string };
    const row = await rows.findById(params.id);
    if (!row || !inScope(row, params)) throw new AppError('NOT_FOUND', `${entity.title} ${params.id} does not exist`);
    return toDto(row);
  });
  app.post(entity.path, { schema: { tags, params: schemas.scopeParams, body: schemas.create, response: { 201: schemas.dto } } }, async (request, reply) => {
    const created = await service.create({ ...(request.body), ...(request.params) }, changeOf(request));
    return reply.status(201).send(created);
  });
  app.patch(`${entity.path}/:id`, { schema: { tags, params: schemas.rowParams, body: schemas.patch, response: { 200: schemas.dto } } }, async (request) => {
    const { id, ...scoped } = request.params as Values & { id: string };
    return service.update(id, request.body, changeOf(request), scoped);
  });
  app.delete(`${entity.path}/:id`, { schema: { tags, params: schemas.rowParams } }, async (request, reply) => {
    const { id, ...scoped } = request.params as Values & { id: string };
    await service.remove(id, changeOf(request), scoped);
    return reply.status(204).send();
  });
}
