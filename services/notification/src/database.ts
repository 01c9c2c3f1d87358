import type { ColumnType, Generated } from 'kysely';

export type Priority = 'CRITICAL' | 'HIGH' | 'NORMAL' | 'LOW';
export const PRIORITIES: readonly Priority[] = ['CRITICAL', 'HIGH', 'NORMAL', 'LOW'];

/** One notification: a department broadcast (user_id null) or a user's own (user_id set). */
export interface NotificationTable {
  id: Generated<string>;
  department_code: string | null;
  user_id: string | null;
  notification_type: string;
  title: string;
  message: string;
  priority: ColumnType<Priority, Priority | undefined, never>;
  reference_id: string | null;
  reference_type: string | null;
  metadata: ColumnType<Record<string, unknown>, string | undefined, string>;
  created_at: ColumnType<Date, Date | undefined, never>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
  deleted_at: ColumnType<Date | null, never, Date | null>;
  created_by: string | null;
}

/** One user's state of one notification; no row means unread, unseen, not archived, not actioned. */
export interface NotificationReceiptTable {
  user_id: string;
  notification_id: string;
  read_at: Date | null;
  seen_at: Date | null;
  archived_at: Date | null;
  actioned_at: Date | null;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

/** Core's orders as the lookup keeps them (registry: `orders_lookup`). */
export interface OrdersLookupTable {
  id: string;
  order_code: string;
  status: string;
  department_code: string;
  master_id: string | null;
  source_version: number;
  synced_at: Date;
}

/** Core's events whose notifications were made (a redelivery finds its id here). */
export interface AppliedEventTable {
  event_id: string;
  applied_at: ColumnType<Date, Date | undefined, never>;
}

/**
 * Unread notifications as the triggers keep them (migration 20261202030000): (user, NULL) a user's
 * own, (NULL, department) a department's broadcasts, (user, department) minus those the user is done with.
 */
export interface UnreadCounterTable {
  user_id: string | null;
  department_code: string | null;
  priority: Priority;
  unread: ColumnType<string, never, never>;
}

/** The notification schema as Kysely sees it. */
export interface NotificationDatabase {
  notifications: NotificationTable;
  notification_receipts: NotificationReceiptTable;
  orders_lookup: OrdersLookupTable;
  applied_events: AppliedEventTable;
  unread_counters: UnreadCounterTable;
}
