import type { EventEnvelope } from '@archipelago/platform/events';
import type { NewNotification } from './notification.repository.ts';

/** What core's order events carry (core's orderDto, plus previous_status on a status change). */
export interface OrderEventPayload {
  readonly id: string;
  readonly order_code: string;
  readonly item_name: string;
  readonly quantity: number;
  readonly status: string;
  readonly department_code: string;
  readonly created_by: string | null;
  readonly previous_status?: string;
}

const orderReference = (order: OrderEventPayload) => ({
  reference_id: order.id,
  reference_type: 'ORDER',
  metadata: { order_code: order.order_code, status: order.status, item_name: order.item_name },
  created_by: 'core',
});

/**
 * Which notifications each of core's events makes — the whole policy, in one place:
 * - order.created → the order's department: "New order ORD-…";
 * - order.status-changed to COMPLETED → "Order ready" (HIGH) to the department and to the order's creator;
 * - order.status-changed to CANCELLED → the order's creator.
 */
export function notificationsOf(event: EventEnvelope): NewNotification[] {
  const order = event.payload as OrderEventPayload;
  const toDepartment = { department_code: order.department_code, user_id: null };
  const toCreator = order.created_by ? [{ department_code: order.department_code, user_id: order.created_by }] : [];
  if (event.type === 'order.created') {
    return [{ ...toDepartment, ...orderReference(order), notification_type: 'ORDER_PLACED', priority: 'NORMAL', title: `New order ${order.order_code}`, message: `${order.item_name} × ${order.quantity}` }];
  }
  if (event.type === 'order.status-changed' && order.status === 'COMPLETED') {
    return [toDepartment, ...toCreator].map((target) => ({
      ...target, ...orderReference(order), notification_type: 'ORDER_COMPLETED', priority: 'HIGH' as const, title: 'Order ready', message: `${order.order_code} (${order.item_name}) is ready`,
    }));
  }
  if (event.type === 'order.status-changed' && order.status === 'CANCELLED') {
    return toCreator.map((target) => ({
      ...target, ...orderReference(order), notification_type: 'ORDER_CANCELLED', priority: 'NORMAL' as const, title: 'Order cancelled', message: `${order.order_code} (${order.item_name}) was cancelled`,
    }));
  }
  return [];
}
