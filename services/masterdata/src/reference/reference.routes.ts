import Type, { type TProperties, type TSchema } from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import { changeOf } from '@archipelago/platform/auth';
import { referenceDto, type ReferenceEntity } from './reference.entity.ts';
import type { ReferenceRepository } from './reference.repository.ts';
import type { ReferenceService } from './reference.service.ts';

type Values = Record<string, unknown>;

// Request and response schemas of one entity, derived from its columns.
function schemasOf(entity: ReferenceEntity) {
  const editable: TProperties = { ...entity.columns, is_active: Type.Boolean() };
  const optional = new Set([...entity.optionalOnCreate, 'is_active']);
  const dto = Type.Object({ id: Type.String({ format: 'uuid' }), code: Type.String(), ...entity.columns, is_active: Type.Boolean(), version: Type.Integer() });
  const filters = Object.fromEntries(entity.filters.map((column) => [column, Type.Optional(entity.columns[column] as TSchema)]));
  return {
    dto,
    params: Type.Object({ code: entity.code }),
    create: Type.Object(
      { code: entity.code, ...Object.fromEntries(Object.entries(editable).map(([column, schema]) => [column, optional.has(column) ? Type.Optional(schema) : schema])) },
      { additionalProperties: false },
    ),
    patch: Type.Object(
      Object.fromEntries(Object.entries(editable).map(([column, schema]) => [column, Type.Optional(schema)])),
      { additionalProperties: false, minProperties: 1 },
    ),
    list: Type.Object({
      limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
      offset: Type.Integer({ minimum: 0, default: 0 }),
      active: Type.Optional(Type.Boolean()),
      ...filters,
    }),
  };
}

/**
 * The REST API of one reference entity under its path (list, read, create, PATCH, soft DELETE),
 * its internal export for reconciliation: `GET /internal/v1/export/<name>?after=<code>&limit=`,
 * and a batch check of codes for other services: `POST /internal/v1/<plural>/validate {codes}`.
 */
export function referenceRoutes(app: HttpServer, rows: ReferenceRepository, service: ReferenceService): void {
  const entity = rows.entity;
  const schemas = schemasOf(entity);
  const tags = [entity.table];
  const toDto = referenceDto.bind(null, entity);

  app.get(
    entity.path,
    { schema: { tags, querystring: schemas.list, response: { 200: Type.Object({ items: Type.Array(schemas.dto), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() }) } } },
    async (request) => {
      const { limit, offset, active, ...where } = request.query as { limit: number; offset: number; active?: boolean } & Values;
      const page = await rows.list({ limit, offset, active, where });
      return { items: page.items.map(toDto), total: page.total, limit, offset };
    },
  );
  app.get(`${entity.path}/:code`, { schema: { tags, params: schemas.params, response: { 200: schemas.dto } } }, async (request) => {
    const { code } = request.params;
    const row = await rows.findByCode(code);
    if (!row) throw new AppError('NOT_FOUND', `${entity.title} ${code} does not exist`);
    return toDto(row);
  });
  app.post(entity.path, { schema: { tags, body: schemas.create, response: { 201: schemas.dto } } }, async (request, reply) => {
    const created = await service.create(request.body, changeOf(request));
    return reply.status(201).send(created);
  });
  app.patch(`${entity.path}/:code`, { schema: { tags, params: schemas.params, body: schemas.patch, response: { 200: schemas.dto } } }, async (request) => {
    const { code } = request.params;
    return service.update(code, request.body, changeOf(request));
  });
  app.delete(`${entity.path}/:code`, { schema: { tags, params: schemas.params } }, async (request, reply) => {
    const { code } = request.params;
    await service.remove(code, changeOf(request));
    return reply.status(204).send();
  });
  app.post(
    `/internal/v1/${entity.path.split('/').at(-1)}/validate`,
    {
      schema: {
        hide: true,
        // Any code may be asked about: one that could never exist is simply not found.
        body: Type.Object({ codes: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 1000 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(Type.Object({ code: Type.String(), active: Type.Boolean() })) }) },
      },
    },
    async (request) => {
      const found = await rows.liveAmong([...new Set(request.body.codes)]);
      return { items: found.map((row) => ({ code: row.code, active: row.is_active })) };
    },
  );
  app.get(
    `/internal/v1/export/${entity.name}`,
    {
      schema: {
        hide: true,
        querystring: Type.Object({
          after: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
          limit: Type.Integer({ minimum: 1, maximum: 1000, default: 500 }),
        }),
        response: { 200: Type.Object({ items: Type.Array(schemas.dto), next: Type.Union([Type.String(), Type.Null()]) }) },
      },
    },
    async (request) => {
      const { after, limit } = request.query;
      const found = await rows.exportAfter(after, limit + 1);
      const items = found.slice(0, limit).map(toDto);
      return { items, next: found.length > limit ? items[items.length - 1]!.code : null };
    },
  );
}
