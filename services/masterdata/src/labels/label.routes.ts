import Type from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import type { EventMetadata } from '@archipelago/platform/events';
import type { FastifyRequest } from 'fastify';
import type { LabelRepository } from './label.repository.ts';
import { labelDto, type LabelService } from './label.service.ts';

const LabelSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  code: Type.String(),
  label: Type.String(),
  display_name: Type.String(),
  abbreviation: Type.Union([Type.String(), Type.Null()]),
  display_order: Type.Integer(),
  is_active: Type.Boolean(),
  version: Type.Integer(),
});

const Code = Type.String({ pattern: '^[A-Z0-9_]{1,10}$', description: 'Upper-case label code, e.g. DR' });
const Editable = {
  label: Type.String({ minLength: 1, maxLength: 50 }),
  display_name: Type.String({ minLength: 1, maxLength: 50 }),
  abbreviation: Type.Union([Type.String({ minLength: 1, maxLength: 50 }), Type.Null()]),
  display_order: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
  is_active: Type.Boolean(),
};

// Who and which request caused a change; the user arrives with authentication (IAM issue).
const metadataOf = (request: FastifyRequest): EventMetadata => ({ correlationId: request.id });

/** The labels API: reads from the repository, writes through the service (outbox). */
export function labelRoutes(app: HttpServer, labels: LabelRepository, service: LabelService): void {
  app.get(
    '/api/v1/labels',
    {
      schema: {
        tags: ['labels'],
        querystring: Type.Object({
          limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
          offset: Type.Integer({ minimum: 0, default: 0 }),
          active: Type.Optional(Type.Boolean()),
        }),
        response: { 200: Type.Object({ items: Type.Array(LabelSchema), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() }) },
      },
    },
    async (request) => {
      const { limit, offset, active } = request.query;
      const page = await labels.list({ limit, offset, activeOnly: active ?? false });
      return { items: page.items.map(labelDto), total: page.total, limit, offset };
    },
  );
  app.get(
    '/api/v1/labels/:code',
    { schema: { tags: ['labels'], params: Type.Object({ code: Code }), response: { 200: LabelSchema } } },
    async (request) => {
      const label = await labels.findByCode(request.params.code);
      if (!label) throw new AppError('NOT_FOUND', `Label ${request.params.code} does not exist`);
      return labelDto(label);
    },
  );
  app.post(
    '/api/v1/labels',
    {
      schema: {
        tags: ['labels'],
        body: Type.Object(
          {
            code: Code,
            label: Editable.label,
            display_name: Editable.display_name,
            abbreviation: Type.Optional(Editable.abbreviation),
            display_order: Type.Optional(Editable.display_order),
            is_active: Type.Optional(Editable.is_active),
          },
          { additionalProperties: false },
        ),
        response: { 201: LabelSchema },
      },
    },
    async (request, reply) => {
      const { abbreviation, ...rest } = request.body;
      const label = await service.create({ ...rest, abbreviation: abbreviation ?? null }, metadataOf(request));
      return reply.status(201).send(label);
    },
  );
  app.patch(
    '/api/v1/labels/:code',
    {
      schema: {
        tags: ['labels'],
        params: Type.Object({ code: Code }),
        body: Type.Object(
          {
            label: Type.Optional(Editable.label),
            display_name: Type.Optional(Editable.display_name),
            abbreviation: Type.Optional(Editable.abbreviation),
            display_order: Type.Optional(Editable.display_order),
            is_active: Type.Optional(Editable.is_active),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: LabelSchema },
      },
    },
    async (request) => service.update(request.params.code, request.body, metadataOf(request)),
  );
  app.delete(
    '/api/v1/labels/:code',
    { schema: { tags: ['labels'], params: Type.Object({ code: Code }) } },
    async (request, reply) => {
      await service.remove(request.params.code, metadataOf(request));
      return reply.status(204).send();
    },
  );
}
