import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { IamDatabase } from '../database.ts';
import type { Session } from './session.table.ts';

/** The only code that reads or writes sessions and refresh_tokens. */
export function sessionRepository(db: Kysely<IamDatabase>) {
  return {
    async create(trx: Transaction<IamDatabase>, session: { userId: string; userAgent: string | null; ip: string | null; expiresAt: Date; tokenHash: Buffer }): Promise<Session> {
      const created = await trx
        .insertInto('sessions')
        .values({ user_id: session.userId, user_agent: session.userAgent, ip: session.ip, expires_at: session.expiresAt, revoked_at: null, revoked_reason: null })
        .returningAll()
        .executeTakeFirstOrThrow();
      await trx.insertInto('refresh_tokens').values({ token_hash: session.tokenHash, session_id: created.id, used_at: null }).execute();
      return created;
    },
    /** A refresh token with its session, locked until the transaction ends. */
    async lockRefreshToken(trx: Transaction<IamDatabase>, tokenHash: Buffer) {
      return trx
        .selectFrom('refresh_tokens')
        .innerJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
        .select(['refresh_tokens.used_at', 'sessions.id as session_id', 'sessions.user_id', 'sessions.expires_at', 'sessions.revoked_at'])
        .where('refresh_tokens.token_hash', '=', tokenHash)
        .forUpdate()
        .executeTakeFirst();
    },
    async rotate(trx: Transaction<IamDatabase>, sessionId: string, oldHash: Buffer, newHash: Buffer, now: Date): Promise<void> {
      await trx.updateTable('refresh_tokens').set({ used_at: now }).where('token_hash', '=', oldHash).execute();
      await trx.insertInto('refresh_tokens').values({ token_hash: newHash, session_id: sessionId, used_at: null }).execute();
      await trx.updateTable('sessions').set({ last_used_at: now }).where('id', '=', sessionId).execute();
    },
    /** Revokes sessions of a user (one, or all with `sessionId` undefined); returns the revoked ids. */
    async revoke(executor: Transaction<IamDatabase> | Kysely<IamDatabase>, userId: string, reason: string, sessionId?: string): Promise<string[]> {
      let query = executor
        .updateTable('sessions')
        .set({ revoked_at: sql<Date>`now()`, revoked_reason: reason })
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null);
      if (sessionId) query = query.where('id', '=', sessionId);
      return (await query.returning('id').execute()).map((r) => r.id);
    },
    /** Which of these sessions are on (not revoked, not expired, of a user still active), with their user's department. */
    async activeAmong(ids: readonly string[], now: Date): Promise<{ id: string; user_id: string; department_code: string | null }[]> {
      if (ids.length === 0) return [];
      return db
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_id')
        .select(['sessions.id', 'sessions.user_id', 'users.department_code'])
        .where('sessions.id', 'in', ids)
        .where('sessions.revoked_at', 'is', null)
        .where('sessions.expires_at', '>', now)
        .where('users.status', '=', 'active')
        .where('users.deleted_at', 'is', null)
        .execute();
    },
    /** Whether the user has signed in from this address since `since` (a known address). */
    async signedInFrom(userId: string, ip: string, since: Date): Promise<boolean> {
      const row = await db.selectFrom('sessions').select('id').where('user_id', '=', userId).where('ip', '=', ip).where('created_at', '>=', since).limit(1).executeTakeFirst();
      return row !== undefined;
    },
    async listActive(userId: string, now: Date): Promise<Session[]> {
      return db
        .selectFrom('sessions')
        .selectAll()
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .orderBy('created_at', 'desc')
        .execute();
    },
  };
}

export type SessionRepository = ReturnType<typeof sessionRepository>;

export interface ThrottleRule {
  /** Attempts, each within `windowSeconds` of the one before, that lock the key … */
  readonly maxFailures: number;
  readonly windowSeconds: number;
  /** … for `lockSeconds`, doubling with every further attempt up to `maxLockSeconds`. */
  readonly lockSeconds: number;
  readonly maxLockSeconds: number;
}

/**
 * Attempts per key (`pair:<email>|<address>`, `account:<email>`, `ip:<address>`, `reset-…`):
 * counting, progressive lockout and its expiry. Used for sign-ins (failures) and reset requests.
 */
export function loginThrottle(db: Kysely<IamDatabase>) {
  return {
    /**
     * Counts an attempt against `key` before the password is checked, and says until when the
     * key was already locked (then nothing is counted). The row is locked while counting, so
     * parallel attempts take turns: 300 at once still get only the rule's number of tries.
     * The attempt that reaches the rule's count locks the key for the attempts after it; each
     * attempt after that (once the lock has expired) locks it twice as long, up to the maximum.
     */
    async claim(key: string, rule: ThrottleRule, now: Date): Promise<Date | undefined> {
      const windowStart = new Date(now.getTime() - rule.windowSeconds * 1000);
      const attempts = sql<number>`CASE WHEN t.last_attempt_at < ${windowStart} THEN 1 ELSE t.failures + 1 END`;
      const lockUntil = (count: RawBuilder<number> | number) => sql<Date>`
        CASE WHEN ${count} >= ${rule.maxFailures}::int
          THEN ${now}::timestamptz + make_interval(secs => least(${rule.lockSeconds}::float8 * power(2, ${count} - ${rule.maxFailures}::int), ${rule.maxLockSeconds}::float8))
        END`;
      const { rows } = await sql<{ locked_until: Date | null }>`
        WITH previous AS (SELECT locked_until FROM login_throttle WHERE key = ${key} FOR UPDATE),
        counted AS (
          INSERT INTO login_throttle AS t (key, failures, last_attempt_at, locked_until)
          VALUES (${key}, 1, ${now}, ${lockUntil(1)})
          ON CONFLICT (key) DO UPDATE SET failures = ${attempts}, last_attempt_at = ${now}, locked_until = ${lockUntil(attempts)}
          WHERE t.locked_until IS NULL OR t.locked_until <= ${now}
        )
        SELECT locked_until FROM previous WHERE locked_until > ${now}`.execute(db);
      return rows[0]?.locked_until ?? undefined;
    },
    /** Takes back one counted attempt (it succeeded), unlocking the key if that attempt locked it. */
    async forgive(key: string, rule: ThrottleRule): Promise<void> {
      await sql`
        UPDATE login_throttle SET failures = greatest(failures - 1, 0),
          locked_until = CASE WHEN failures - 1 < ${rule.maxFailures} THEN NULL ELSE locked_until END
        WHERE key = ${key}`.execute(db);
    },
    async clear(key: string): Promise<void> {
      await db.deleteFrom('login_throttle').where('key', '=', key).execute();
    },
  };
}

export type LoginThrottle = ReturnType<typeof loginThrottle>;
