import type { ColumnType } from 'kysely';

export interface PasswordResetTable {
  token_hash: Buffer;
  user_id: string;
  created_at: ColumnType<Date, never, Date>;
  expires_at: Date;
  used_at: Date | null;
}
