import type { ColumnType, Generated, Selectable } from 'kysely';

export interface LabelTable {
  id: Generated<string>;
  code: string;
  label: string;
  display_name: string;
  abbreviation: string | null;
  display_order: ColumnType<number, number | undefined, number>;
  is_active: ColumnType<boolean, boolean | undefined, boolean>;
  version: ColumnType<number, number | undefined, number>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
  created_by: string | null;
  updated_by: string | null;
  deleted_at: Date | null;
}

export type Label = Selectable<LabelTable>;
