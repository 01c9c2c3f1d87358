import { sql, type Kysely, type Transaction } from 'kysely';
import type { EventMetadata } from '@archipelago/platform/events';
import type { IamDatabase } from '../database.ts';

/** Who, through which request and from which address made a change: the address goes to the audit log, never into an event. */
export interface ChangeMetadata extends EventMetadata {
  readonly ip?: string;
}

/** One line of the authentication audit log. */
export interface AuditEntry {
  readonly event:
    | 'login.success' | 'login.failure' | 'login.locked' | 'logout' | 'refresh.reuse' | 'session.revoked'
    | 'roles.changed' | 'role.permissions-changed' | 'password-reset.requested' | 'password-reset.completed'
    | 'password-reset.throttled' | 'password-reset.undelivered' | 'password.changed'
    | 'api-token.created' | 'api-token.revoked' | 'api-tokens.revoked' | 'user.created' | 'user.deleted'
    | 'user.disabled' | 'user.enabled' | 'user.department-changed' | 'user.email-changed'
    | 'policy.created' | 'policy.updated' | 'policy.deleted';
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
    /**
     * Deletes entries older than `retentionDays` (at least 730: audit entries are kept two years); returns how
     * many. The app role cannot DELETE audit rows: this goes through the owner's function.
     */
    async purgeOlderThan(retentionDays: number): Promise<number> {
      const { rows } = await sql<{ purged: string }>`SELECT purge_auth_audit_log(${retentionDays}::int) AS purged`.execute(db);
      return Number(rows[0]?.purged ?? 0);
    },
    async list(filter: { userId?: string; limit: number }) {
      let query = db.selectFrom('auth_audit_log').selectAll().orderBy('id', 'desc').limit(filter.limit);
      if (filter.userId) query = query.where('user_id', '=', filter.userId);
      return query.execute();
    },
  };
}

export type AuditLog = ReturnType<typeof auditLog>;
