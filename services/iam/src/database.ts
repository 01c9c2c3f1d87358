import type { ColumnType, Generated } from 'kysely';

export interface RoleTable {
  id: Generated<string>;
  name: string;
  description: ColumnType<string, string | undefined, string>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
}

export interface UserTable {
  id: Generated<string>;
  email: string;
  display_name: string;
  password_hash: string | null;
  status: ColumnType<'active' | 'disabled', 'active' | 'disabled' | undefined, 'active' | 'disabled'>;
  department_code: string | null;
  version: ColumnType<number, number | undefined, number>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
  deleted_at: Date | null;
}

/** The iam schema as Kysely sees it. */
export interface IamDatabase {
  roles: RoleTable;
  users: UserTable;
}
