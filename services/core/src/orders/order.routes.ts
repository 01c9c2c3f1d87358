import Type from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import { changeOf, type Auth } from '@archipelago/platform/auth';
import { departmentAccess } from '../access/department.ts';
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

/** The orders API: paged list with filters, read, create, and status changes. */
export function orderRoutes(app: HttpServer, auth: Auth, orders: OrderRepository, service: OrderService): void {
  const tags = ['orders'];
  // Department policies: another department's order does not exist for a user who may not read it.
  const access = departmentAccess(auth, 'orders');
  const notFound = (key: string) => () => new AppError('NOT_FOUND', `Order ${key} does not exist`);
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
      const filters = await access.listScope(request, request.query);
      if (!filters) return { items: [], total: 0, limit, offset };
      const page = await orders.list(filters);
      return { items: page.items.map(orderDto), total: page.total, limit, offset };
    },
  );
  // Lookup copies of orders (notification's orders_lookup) are snapshotted and reconciled from here.
  app.get(
    '/internal/v1/export/order',
    {
      schema: {
        hide: true,
        querystring: Type.Object({ after: Type.Optional(Id), limit: Type.Integer({ minimum: 1, maximum: 1000, default: 500 }) }),
        response: { 200: Type.Object({ items: Type.Array(OrderSchema), next: Nullable(Type.String()) }) },
      },
    },
    async (request) => {
      const found = await orders.exportAfter(request.query.after, request.query.limit + 1);
      const items = found.slice(0, request.query.limit).map(orderDto);
      return { items, next: found.length > request.query.limit ? items[items.length - 1]!.id : null };
    },
  );
  app.get(
    '/api/v1/orders/:id',
    { schema: { tags, description: 'One order, by id or by order code', params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 40, description: 'uuid or ORD-YYYY-NNNNNN' }) }), response: { 200: OrderSchema } } },
    async (request) => {
      const order = await orders.findByIdOrCode(request.params.id);
      if (!order) throw notFound(request.params.id)();
      await access.requireReadable(request, order.department_code, notFound(request.params.id));
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
    async (request, reply) => {
      await access.requireWriteTo(request, request.body.department_code);
      return reply.status(201).send(await service.create(request.body, changeOf(request)));
    },
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
      // An order's department never changes, so checking it before the transaction is enough.
      const order = await orders.findByIdOrCode(request.params.id);
      if (!order) throw notFound(request.params.id)();
      await access.requireWritable(request, order.department_code, notFound(request.params.id));
      return service.changeStatus(request.params.id, request.body.status, changeOf(request));
    },
  );
}
