import type { ColumnType, Generated } from 'kysely';

export interface ResourceTable {
  id: Generated<string>;
  reference_number: string;
  label_code: string | null;
  first_name: string;
  last_name: string;
  version: ColumnType<number, number | undefined, number>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
  created_by: string | null;
  updated_by: string | null;
  deleted_at: Date | null;
}

/** The core schema as Kysely sees it. */
export interface CoreDatabase {
  resources: ResourceTable;
}
