import type { ColumnType, Generated, Selectable } from 'kysely';

export interface SessionTable {
  id: Generated<string>;
  user_id: string;
  user_agent: string | null;
  ip: string | null;
  created_at: ColumnType<Date, never, never>;
  last_used_at: ColumnType<Date, Date | undefined, Date>;
  expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: string | null;
}

export interface RefreshTokenTable {
  token_hash: Buffer;
  session_id: string;
  created_at: ColumnType<Date, never, never>;
  used_at: Date | null;
}

export interface LoginThrottleTable {
  key: string;
  failures: number;
  last_attempt_at: Date;
  locked_until: Date | null;
}

export type Session = Selectable<SessionTable>;
