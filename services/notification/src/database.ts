import type { ColumnType, Generated } from 'kysely';

export interface NotificationTable {
  id: Generated<string>;
  department_id: string | null;
  user_id: string | null;
  notification_type: string;
  title: string;
  message: string;
  priority: ColumnType<'CRITICAL' | 'HIGH' | 'NORMAL' | 'LOW', 'CRITICAL' | 'HIGH' | 'NORMAL' | 'LOW' | undefined, never>;
  reference_id: string | null;
  reference_type: string | null;
  data: unknown;
  created_at: ColumnType<Date, never, never>;
  created_by: string | null;
}

export interface NotificationReadTable {
  notification_id: string;
  user_id: string;
  read_at: ColumnType<Date, Date | undefined, never>;
}

/** The notification schema as Kysely sees it. */
export interface NotificationDatabase {
  notifications: NotificationTable;
  notification_reads: NotificationReadTable;
}
