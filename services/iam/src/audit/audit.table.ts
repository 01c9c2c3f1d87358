import type { ColumnType, Generated } from 'kysely';

export interface AuditLogTable {
  id: Generated<number>;
  occurred_at: ColumnType<Date, Date | undefined, never>;
  event: string;
  user_id: string | null;
  email: string | null;
  ip: string | null;
  detail: ColumnType<Record<string, unknown>, string | undefined, never>;
}
