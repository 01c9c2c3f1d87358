import { sql, type Kysely, type Transaction } from 'kysely';
import type { IamDatabase } from '../database.ts';
import type { ApiToken } from './api-token.table.ts';

/** The only code that reads or writes api_tokens and api_token_usage. */
export function apiTokenRepository(db: Kysely<IamDatabase>) {
  return {
    async insert(token: { userId: string; name: string; prefix: string; secretHash: Buffer; scopes: string[]; expiresAt: Date }, trx: Transaction<IamDatabase> | Kysely<IamDatabase> = db): Promise<ApiToken> {
      return trx
        .insertInto('api_tokens')
        .values({ user_id: token.userId, name: token.name, prefix: token.prefix, secret_hash: token.secretHash, scopes: token.scopes, expires_at: token.expiresAt, last_used_at: null, revoked_at: null })
        .returningAll()
        .executeTakeFirstOrThrow();
    },
    async findByPrefix(prefix: string): Promise<ApiToken | undefined> {
      return db.selectFrom('api_tokens').selectAll().where('prefix', '=', prefix).executeTakeFirst();
    },
    async listOfUser(userId: string): Promise<ApiToken[]> {
      return db.selectFrom('api_tokens').selectAll().where('user_id', '=', userId).where('revoked_at', 'is', null).orderBy('created_at', 'desc').execute();
    },
    /** Requests per day of each token, the last `days` days. */
    async usage(tokenIds: readonly string[], days: number): Promise<Map<string, { day: string; count: number }[]>> {
      const result = new Map<string, { day: string; count: number }[]>(tokenIds.map((id) => [id, []]));
      if (tokenIds.length === 0) return result;
      const rows = await db
        .selectFrom('api_token_usage')
        .select(['token_id', sql<string>`to_char(day, 'YYYY-MM-DD')`.as('day'), 'count'])
        .where('token_id', 'in', tokenIds)
        .where('day', '>=', sql<string>`current_date - ${days}::int`)
        .orderBy('day', 'desc')
        .execute();
      for (const row of rows) result.get(row.token_id)?.push({ day: row.day, count: row.count });
      return result;
    },
    async recordUse(tokenId: string, now: Date): Promise<void> {
      await db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', tokenId).execute();
      await sql`
        INSERT INTO api_token_usage (token_id, day, count) VALUES (${tokenId}, (${now}::timestamptz AT TIME ZONE 'UTC')::date, 1)
        ON CONFLICT (token_id, day) DO UPDATE SET count = api_token_usage.count + 1`.execute(db);
    },
    async revoke(userId: string, id: string): Promise<boolean> {
      const result = await db.updateTable('api_tokens').set({ revoked_at: sql<Date>`now()` }).where('id', '=', id).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },
    /** Revokes every live token of the user; returns how many. */
    async revokeAllOfUser(executor: Transaction<IamDatabase>, userId: string): Promise<number> {
      const result = await executor.updateTable('api_tokens').set({ revoked_at: sql<Date>`now()` }).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
      return Number(result.numUpdatedRows);
    },
  };
}

export type ApiTokenRepository = ReturnType<typeof apiTokenRepository>;
