import type { ColumnType, Generated } from 'kysely';

/** The columns every reference table has besides `code` and its business columns. */
interface AuditColumns {
  id: Generated<string>;
  code: string;
  is_active: ColumnType<boolean, boolean | undefined, boolean>;
  version: ColumnType<number, number | undefined, number>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
  created_by: string | null;
  updated_by: string | null;
  deleted_at: Date | null;
}

/** The masterdata schema as Kysely sees it (the reference/ module reaches it through `sql`). */
export interface MasterdataDatabase {
  labels: AuditColumns & { label: string; display_name: string; abbreviation: string | null; display_order: ColumnType<number, number | undefined, number> };
  regions: AuditColumns & { name: string; zone: string };
  districts: AuditColumns & { name: string; region_code: string };
  sub_districts: AuditColumns & { name: string; district_code: string };
  departments: AuditColumns & { name: string };
  classification_codes: AuditColumns & { description: string; category: string };
}
