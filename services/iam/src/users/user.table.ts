import type { ColumnType, Generated, Selectable } from 'kysely';

export type UserStatus = 'active' | 'disabled';

export interface UserTable {
  id: Generated<string>;
  email: string;
  display_name: string;
  password_hash: string | null;
  status: ColumnType<UserStatus, UserStatus | undefined, UserStatus>;
  department_code: string | null;
  version: ColumnType<number, number | undefined, number>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
  deleted_at: Date | null;
}

export interface UserRoleTable {
  user_id: string;
  role_id: string;
  created_at: ColumnType<Date, never, never>;
}

export type User = Selectable<UserTable>;
