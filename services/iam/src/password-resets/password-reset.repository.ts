import { sql, type Kysely, type Transaction } from 'kysely';
import type { IamDatabase } from '../database.ts';

/** The only code that reads or writes password_resets. */
export function passwordResetRepository() {
  return {
    /** The user's one live reset: a new one replaces (and so invalidates) any earlier unused link. */
    async replaceLive(trx: Transaction<IamDatabase>, reset: { userId: string; tokenHash: Buffer; expiresAt: Date }): Promise<void> {
      await trx
        .insertInto('password_resets')
        .values({ user_id: reset.userId, token_hash: reset.tokenHash, expires_at: reset.expiresAt, used_at: null })
        .onConflict((oc) => oc.column('user_id').where('used_at', 'is', null).doUpdateSet({ token_hash: reset.tokenHash, expires_at: reset.expiresAt, created_at: sql<Date>`now()` }))
        .execute();
    },
    /** Marks an unused, unexpired reset as used; returns its user, or undefined. */
    async consume(trx: Transaction<IamDatabase> | Kysely<IamDatabase>, tokenHash: Buffer, now: Date): Promise<string | undefined> {
      const row = await trx
        .updateTable('password_resets')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .returning('user_id')
        .executeTakeFirst();
      return row?.user_id;
    },
  };
}

export type PasswordResetRepository = ReturnType<typeof passwordResetRepository>;
