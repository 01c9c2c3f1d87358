import Type from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import type { LabelRepository } from './label.repository.ts';
import type { Label } from './label.table.ts';

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

const toDto = (label: Label) => ({
  id: label.id,
  code: label.code,
  label: label.label,
  display_name: label.display_name,
  abbreviation: label.abbreviation,
  display_order: label.display_order,
  is_active: label.is_active,
  version: label.version,
});

// Read side of the labels API; writes arrive with the event backbone (outbox).
export function labelRoutes(app: HttpServer, labels: LabelRepository): void {
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
      return { items: page.items.map(toDto), total: page.total, limit, offset };
    },
  );
  app.get(
    '/api/v1/labels/:code',
    {
      schema: {
        tags: ['labels'],
        params: Type.Object({ code: Type.String({ pattern: '^[A-Z0-9_]{1,10}$' }) }),
        response: { 200: LabelSchema },
      },
    },
    async (request) => {
      const label = await labels.findByCode(request.params.code);
      if (!label) throw new AppError('NOT_FOUND', `Label ${request.params.code} does not exist`);
      return toDto(label);
    },
  );
}
