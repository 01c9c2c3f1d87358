import type { ColumnType, Generated, Selectable } from 'kysely';

export interface RoleTable {
  id: Generated<string>;
  name: string;
  description: ColumnType<string, string | undefined, string>;
  version: ColumnType<number, number | undefined, number>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
}

export interface PermissionTable {
  id: Generated<string>;
  name: string;
  description: ColumnType<string, string | undefined, string>;
  created_at: ColumnType<Date, never, never>;
}

export interface RolePermissionTable {
  role_id: string;
  permission_id: string;
}

export type Role = Selectable<RoleTable>;
export type Permission = Selectable<PermissionTable>;
