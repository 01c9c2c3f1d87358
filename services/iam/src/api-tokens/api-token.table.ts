import type { ColumnType, Generated, Selectable } from 'kysely';

export interface ApiTokenTable {
  id: Generated<string>;
  user_id: string;
  name: string;
  prefix: string;
  secret_hash: Buffer;
  scopes: string[];
  expires_at: Date;
  last_used_at: Date | null;
  created_at: ColumnType<Date, never, never>;
  revoked_at: Date | null;
}

export interface ApiTokenUsageTable {
  token_id: string;
  day: ColumnType<string, string, never>;
  count: ColumnType<number, number, number>;
}

export type ApiToken = Selectable<ApiTokenTable>;
