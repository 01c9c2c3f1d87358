import type { OrderStatus } from '../database.ts';

/** The legal status changes: PENDING → PROCESSING → COMPLETED, and CANCELLED from either open state. */
export const orderTransitions: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  PENDING: ['PROCESSING', 'CANCELLED'],
  PROCESSING: ['COMPLETED', 'CANCELLED'],
  COMPLETED: [],
  CANCELLED: [],
};

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return orderTransitions[from].includes(to);
}

/** `ORD-2025-000001`: the year and a per-year number, at least six digits. */
export function formatOrderCode(year: number, number: number): string {
  return `ORD-${year}-${String(number).padStart(6, '0')}`;
}
