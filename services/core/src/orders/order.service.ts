import type { Kysely, Transaction } from 'kysely';
import { AppError } from '@archipelago/platform';
import { appendEvents } from '@archipelago/platform/events';
import type { Change } from '@archipelago/platform/auth';
import type { CoreDatabase, OrderStatus } from '../database.ts';
import type { CrudRepository } from '@archipelago/platform/crud';
import type { ReferenceValidator } from '@archipelago/platform/references';
import type { Order, OrderRepository } from './order.repository.ts';
import { canTransition, formatOrderCode, orderTransitions } from './order.status.ts';

/** What the API returns and what order events carry. */
export function orderDto(order: Order) {
  return {
    id: order.id,
    order_code: order.order_code,
    item_name: order.item_name,
    quantity: order.quantity,
    status: order.status,
    department_code: order.department_code,
    resource_id: order.resource_id,
    ordered_at: order.ordered_at.toISOString(),
    completed_at: order.completed_at?.toISOString() ?? null,
    cancelled_at: order.cancelled_at?.toISOString() ?? null,
    created_by: order.created_by,
    version: order.version,
    created_at: order.created_at.toISOString(),
    updated_at: order.updated_at.toISOString(),
  };
}

export type OrderDto = ReturnType<typeof orderDto>;

export interface OrderInput {
  readonly item_name: string;
  readonly quantity?: number;
  readonly department_code: string;
  readonly resource_id?: string | null;
  /** ISO date-time; now when left out. Its UTC year is the year of the order code. */
  readonly ordered_at?: string;
}

/** The rules of orders: codes without gaps per year, only legal status changes, each change with its event. */
export function orderService(db: Kysely<CoreDatabase>, references: ReferenceValidator, orders: OrderRepository, resources: CrudRepository) {
  const record = async (trx: Transaction<CoreDatabase>, type: 'order.created' | 'order.status-changed', order: Order, change: Change, extra: object = {}) => {
    const dto = orderDto(order);
    await appendEvents(trx, [{ type, aggregateType: 'order', aggregateId: order.id, aggregateVersion: order.version, payload: { ...dto, ...extra }, metadata: change.metadata }]);
    return dto;
  };

  return {
    async create(input: OrderInput, change: Change): Promise<OrderDto> {
      await references.check([
        { field: 'body.department_code', value: input.department_code, ref: 'department' },
        { field: 'created_by', value: change.userId, ref: 'user' }, // the token's user, not the body's
      ]);
      const orderedAt = input.ordered_at ? new Date(input.ordered_at) : new Date();
      return db.transaction().execute(async (trx) => {
        if (input.resource_id && !(await resources.lock(trx, input.resource_id, 'share'))) {
          throw new AppError('UNPROCESSABLE_REFERENCE', `Resource ${input.resource_id} does not exist`, {
            fields: [{ field: 'body.resource_id', message: 'does not exist', value: input.resource_id }],
          });
        }
        const year = orderedAt.getUTCFullYear();
        const order = await orders.insert(trx, {
          order_code: formatOrderCode(year, await orders.nextNumber(trx, year)),
          item_name: input.item_name,
          quantity: input.quantity,
          department_code: input.department_code,
          resource_id: input.resource_id ?? null,
          ordered_at: orderedAt,
          created_by: change.userId,
        });
        return record(trx, 'order.created', order, change);
      });
    },
    async changeStatus(id: string, to: OrderStatus, change: Change): Promise<OrderDto> {
      return db.transaction().execute(async (trx) => {
        const order = await orders.lockById(trx, id);
        if (!order) throw new AppError('NOT_FOUND', `Order ${id} does not exist`);
        const from = order.status;
        if (!canTransition(from, to)) {
          const allowed = orderTransitions[from];
          throw new AppError('CONFLICT', `Order ${order.order_code} cannot go from ${from} to ${to}`, {
            fields: [{ field: 'body.status', message: `${from} → ${to} is not allowed; from ${from}: ${allowed.length > 0 ? allowed.join(' or ') : 'no change'}`, value: to }],
          });
        }
        const changed = await orders.setStatus(trx, id, to, change.userId);
        return record(trx, 'order.status-changed', changed, change, { previous_status: from });
      });
    },
  };
}

export type OrderService = ReturnType<typeof orderService>;
