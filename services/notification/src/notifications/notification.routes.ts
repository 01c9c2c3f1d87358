import Type from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import type { Auth } from '@archipelago/platform/auth';
import type { FastifyRequest } from 'fastify';
import { decodeCursor, type Viewer } from './notification.repository.ts';
import type { Action, NotificationService } from './notification.service.ts';

const Id = Type.String({ format: 'uuid' });
const Nullable = <T extends Type.TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Priority = Type.Union([Type.Literal('CRITICAL'), Type.Literal('HIGH'), Type.Literal('NORMAL'), Type.Literal('LOW')]);
const NotificationType = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,49}$' });
const DepartmentCode = Type.String({ pattern: '^[A-Z0-9][A-Z0-9._-]{0,19}$' });
const Timestamp = Type.String({ format: 'date-time' });

const NotificationSchema = Type.Object({
  id: Id,
  department_code: Nullable(Type.String()),
  user_id: Nullable(Id),
  notification_type: Type.String(),
  title: Type.String(),
  message: Type.String(),
  priority: Priority,
  reference_id: Nullable(Id),
  reference_type: Nullable(Type.String()),
  reference_code: Nullable(Type.String({ description: "the order's code, from orders_lookup" })),
  reference_status: Nullable(Type.String({ description: "the order's status, from orders_lookup" })),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  created_at: Timestamp,
  created_by: Nullable(Type.String()),
  read_at: Nullable(Timestamp),
  seen_at: Nullable(Timestamp),
  archived_at: Nullable(Timestamp),
  actioned_at: Nullable(Timestamp),
  cursor: Type.String({ description: 'keyset position (created_at, id): pass it as `cursor` for the next page, or to the socket to catch up' }),
});
const Counts = Type.Object({ total: Type.Integer(), CRITICAL: Type.Integer(), HIGH: Type.Integer(), NORMAL: Type.Integer(), LOW: Type.Integer() });

// What a created notification says, whoever it goes to.
const CONTENT = {
  notification_type: NotificationType,
  title: Type.String({ minLength: 1, maxLength: 255 }),
  message: Type.String({ minLength: 1, maxLength: 10_000 }),
  priority: Type.Optional(Priority),
  reference_id: Type.Optional(Id),
  reference_type: Type.Optional(Type.String({ pattern: '^[A-Z][A-Z_]{0,49}$' })),
  metadata: Type.Optional(Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), { maxProperties: 50 })),
};
// Recipients of one multi-recipient create: IAM validates up to 1,000 users per call.
const MAX_RECIPIENTS = 1_000;

// Reading one's own notifications and setting one's own state of them is reading; creating one is writing.
const READ = { permission: 'notifications:read' };

/** The notifications API: the caller's feed, unread counts, per-user state, and direct creation. */
export function notificationRoutes(app: HttpServer, auth: Auth, service: NotificationService): void {
  const tags = ['notifications'];
  const viewerOf = (request: FastifyRequest): Viewer => {
    const user = auth.userOf(request);
    return { userId: user.id, departmentCode: user.departmentCode };
  };

  app.get(
    '/api/v1/notifications',
    {
      schema: {
        tags,
        description: "The caller's own notifications and their department's, newest first. Page with `cursor` (keyset, from `next_cursor`) or `page`.",
        querystring: Type.Object({
          limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
          page: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
          cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          type: Type.Optional(NotificationType),
          priority: Type.Optional(Priority),
          from: Type.Optional(Timestamp),
          to: Type.Optional(Timestamp),
          unread: Type.Optional(Type.Boolean({ description: 'only those the caller has not read' })),
          archived: Type.Optional(Type.Boolean({ description: 'true: only archived ones; default: not archived' })),
        }),
        response: {
          200: Type.Object({ items: Type.Array(NotificationSchema), total: Type.Integer(), limit: Type.Integer(), page: Nullable(Type.Integer()), next_cursor: Nullable(Type.String()) }),
        },
      },
    },
    async (request) => {
      const { limit, page, cursor, ...filters } = request.query;
      if (page !== undefined && cursor !== undefined) {
        throw new AppError('BAD_REQUEST', 'Page with either cursor or page, not both', { fields: [{ field: 'querystring.page', message: 'cannot be used with cursor' }] });
      }
      const before = cursor === undefined ? undefined : decodeCursor(cursor);
      if (cursor !== undefined && !before) throw new AppError('BAD_REQUEST', 'The cursor is not one this service gave out', { fields: [{ field: 'querystring.cursor', message: 'is not a cursor', value: cursor }] });
      return service.feed(viewerOf(request), filters, { limit, page, before });
    },
  );
  app.get(
    '/api/v1/notifications/unread-count',
    { schema: { tags, description: "The caller's unread notifications (not read, not archived), in total and per priority", response: { 200: Counts } } },
    async (request) => service.unreadCount(viewerOf(request)),
  );
  app.get(
    '/api/v1/notifications/:id',
    { schema: { tags, params: Type.Object({ id: Id }), response: { 200: NotificationSchema } } },
    async (request) => service.find(viewerOf(request), request.params.id),
  );
  app.post(
    '/api/v1/notifications',
    {
      schema: {
        tags,
        description: 'Creates a notification for a department (department_code), a user (user_id), or both (a user of that department)',
        body: Type.Object({ ...CONTENT, department_code: Type.Optional(DepartmentCode), user_id: Type.Optional(Id) }, { additionalProperties: false }),
        response: { 201: NotificationSchema },
      },
    },
    async (request, reply) => {
      const created = await service.create(request.body, auth.userOf(request).id);
      return reply.code(201).send(created);
    },
  );
  app.post(
    '/api/v1/notifications/bulk',
    {
      schema: {
        tags,
        description: 'Creates one notification per listed user (of department_code, when given) in one request and one transaction; answers them in the order of user_ids',
        body: Type.Object(
          { ...CONTENT, department_code: Type.Optional(DepartmentCode), user_ids: Type.Array(Id, { minItems: 1, maxItems: MAX_RECIPIENTS, uniqueItems: true }) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ items: Type.Array(NotificationSchema) }) },
      },
    },
    async (request, reply) => reply.code(201).send({ items: await service.createForUsers(request.body, auth.userOf(request).id) }),
  );
  app.post(
    '/api/v1/notifications/read-all',
    {
      config: READ,
      schema: {
        tags,
        description: "Marks every unread notification of the caller read (of one type, with `?type=`)",
        querystring: Type.Object({ type: Type.Optional(NotificationType) }),
        response: { 200: Type.Object({ updated: Type.Integer() }) },
      },
    },
    async (request) => service.readAll(viewerOf(request), request.query.type),
  );
  for (const action of ['read', 'seen', 'archive', 'action'] as const satisfies readonly Action[]) {
    app.post(
      `/api/v1/notifications/:id/${action}`,
      { config: READ, schema: { tags, description: `Sets the caller's own ${action} state of one of their notifications`, params: Type.Object({ id: Id }), response: { 200: NotificationSchema } } },
      async (request) => service.act(viewerOf(request), request.params.id, action),
    );
  }
}
