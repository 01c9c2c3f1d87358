import type { Kysely, Transaction } from 'kysely';
import type { IamDatabase } from '../database.ts';

/** One line of the authentication audit log. */
export interface AuditEntry {
  readonly event:
    | 'login.success' | 'login.failure' | 'login.locked' | 'logout' | 'refresh.reuse' | 'session.revoked'
    | 'roles.changed' | 'role.permissions-changed' | 'password-reset.requested' | 'password-reset.completed'
    | 'api-token.created' | 'api-token.revoked' | 'user.created' | 'user.deleted';
  readonly userId?: string | null;
  readonly email?: string | null;
  readonly ip?: string | null;
  readonly detail?: Record<string, unknown>;
}

/** The only code that writes the append-only auth_audit_log. */
export function auditLog(db: Kysely<IamDatabase>) {
  return {
    async record(entry: AuditEntry, trx: Transaction<IamDatabase> | Kysely<IamDatabase> = db): Promise<void> {
      await trx
        .insertInto('auth_audit_log')
        .values({ event: entry.event, user_id: entry.userId ?? null, email: entry.email ?? null, ip: entry.ip ?? null, detail: JSON.stringify(entry.detail ?? {}) })
        .execute();
    },
    /** Deletes entries older than `before` (retention: 2 years, seed 000); returns how many. */
    async purgeBefore(before: Date): Promise<number> {
      const result = await db.deleteFrom('auth_audit_log').where('occurred_at', '<', before).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
    async list(filter: { userId?: string; limit: number }) {
      let query = db.selectFrom('auth_audit_log').selectAll().orderBy('id', 'desc').limit(filter.limit);
      if (filter.userId) query = query.where('user_id', '=', filter.userId);
      return query.execute();
    },
  };
}

export type AuditLog = ReturnType<typeof auditLog>;
