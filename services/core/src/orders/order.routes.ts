import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import { changeOf, type Auth } from '@archipelago/platform/auth';
import type { OrderRepository } from './order.repository.ts';
import { orderDto, type OrderService } from './order.service.ts';

const Id = Type.String({ format: 'uuid' });
const Nullable = <T extends Type.TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Timestamp = Type.String({ format: 'date-time' });
const Status = Type.Union([Type.Literal('PENDING'), Type.Literal('PROCESSING'), Type.Literal('COMPLETED'), Type.Literal('CANCELLED')]);
const DepartmentCode = Type.String({ pattern: '^[A-Z0-9][A-Z0-9._-]{0,19}$' });

const OrderSchema = Type.Object({
  id: Id,
  order_code: Type.String({ description: 'ORD-YYYY-NNNNNN' }),
  item_name: Type.String(),
  quantity: Type.Integer(),
  status: Status,
  department_code: Type.String(),
  resource_id: Nullable(Id),
  ordered_at: Timestamp,
  completed_at: Nullable(Timestamp),
  cancelled_at: Nullable(Timestamp),
  created_by: Nullable(Id),
  version: Type.Integer(),
  created_at: Timestamp,
  updated_at: Timestamp,
});

// A department no user belongs to: asking about it tells whether policies let a user see other departments.
const ANOTHER_DEPARTMENT = { departmentCode: '\u0000another' };

/**
 * Department policies apply to lists too: a user who may not read other departments' orders
 * (e.g. staff under "own department only") lists their own department's; asking for another
 * department is a 403. Undefined: nothing can be listed (no department of their own).
 */
async function departmentScope<Filters extends { department_code?: string }>(auth: Auth, request: FastifyRequest, filters: Filters): Promise<Filters | undefined> {
  if (filters.department_code !== undefined) {
    await auth.authorize(request, 'orders:read', { departmentCode: filters.department_code });
    return filters;
  }
  try {
    await auth.authorize(request, 'orders:read', ANOTHER_DEPARTMENT);
    return filters;
  } catch (error) {
    if (!(error instanceof AppError && error.code === 'FORBIDDEN')) throw error;
    const own = auth.userOf(request).departmentCode;
    return own === null ? undefined : { ...filters, department_code: own };
  }
}

/** The orders API: paged list with filters, read, create, and status changes. */
export function orderRoutes(app: HttpServer, auth: Auth, orders: OrderRepository, service: OrderService): void {
  const tags = ['orders'];
  app.get(
    '/api/v1/orders',
    {
      schema: {
        tags,
        querystring: Type.Object({
          limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
          offset: Type.Integer({ minimum: 0, default: 0 }),
          status: Type.Optional(Status),
          department_code: Type.Optional(DepartmentCode),
          resource_id: Type.Optional(Id),
          order_code: Type.Optional(Type.String({ pattern: '^ORD-\\d{4}-\\d{6,}$' })),
        }),
        response: { 200: Type.Object({ items: Type.Array(OrderSchema), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() }) },
      },
    },
    async (request) => {
      const { limit, offset } = request.query;
      const filters = await departmentScope(auth, request, request.query);
      if (!filters) return { items: [], total: 0, limit, offset };
      const page = await orders.list(filters);
      return { items: page.items.map(orderDto), total: page.total, limit, offset };
    },
  );
  app.get(
    '/api/v1/orders/:id',
    { schema: { tags, description: 'One order, by id or by order code', params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 40, description: 'uuid or ORD-YYYY-NNNNNN' }) }), response: { 200: OrderSchema } } },
    async (request) => {
      const order = await orders.findByIdOrCode(request.params.id);
      if (!order) throw new AppError('NOT_FOUND', `Order ${request.params.id} does not exist`);
      await auth.authorize(request, 'orders:read', { departmentCode: order.department_code }); // department policies
      return orderDto(order);
    },
  );
  app.post(
    '/api/v1/orders',
    {
      schema: {
        tags,
        body: Type.Object(
          {
            item_name: Type.String({ minLength: 1, maxLength: 100 }),
            quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
            department_code: DepartmentCode,
            resource_id: Type.Optional(Nullable(Id)),
            ordered_at: Type.Optional(Timestamp),
          },
          { additionalProperties: false },
        ),
        response: { 201: OrderSchema },
      },
    },
    async (request, reply) => reply.status(201).send(await service.create(request.body, changeOf(request))),
  );
  app.post(
    '/api/v1/orders/:id/status',
    {
      schema: {
        tags,
        params: Type.Object({ id: Id }),
        body: Type.Object({ status: Status }, { additionalProperties: false }),
        response: { 200: OrderSchema },
      },
    },
    async (request) => {
      const order = await orders.findByIdOrCode(request.params.id);
      if (order) await auth.authorize(request, 'orders:write', { departmentCode: order.department_code });
      return service.changeStatus(request.params.id, request.body.status, changeOf(request));
    },
  );
}
