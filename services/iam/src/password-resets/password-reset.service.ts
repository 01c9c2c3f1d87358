import type { Kysely } from 'kysely';
import { AppError, type Logger } from '@archipelago/platform';
import { appendEvents, type EventMetadata } from '@archipelago/platform/events';
import type { AuditLog } from '../audit/audit.repository.ts';
import { hashPassword } from '../crypto/passwords.ts';
import { randomSecret, sha256 } from '../crypto/secrets.ts';
import type { IamDatabase } from '../database.ts';
import type { SessionRepository } from '../sessions/session.repository.ts';
import type { IamSettings } from '../settings.ts';
import type { UserRepository } from '../users/user.repository.ts';
import type { passwordResetRepository } from './password-reset.repository.ts';

/**
 * Password reset: a single-use token, valid for 30 minutes, delivered through the
 * `user.password-reset-requested` event (the embedded default writes the link to the log).
 */
export function passwordResetService(deps: {
  db: Kysely<IamDatabase>;
  users: UserRepository;
  resets: ReturnType<typeof passwordResetRepository>;
  sessions: SessionRepository;
  audit: AuditLog;
  settings: IamSettings;
  logger: Logger | false;
}) {
  const { db, users, resets, sessions, audit, settings, logger } = deps;
  return {
    /** Resolves the same way whether or not the email belongs to anyone. */
    async request(email: string, ip: string, metadata: EventMetadata): Promise<void> {
      const user = await users.findByEmail(email.trim());
      if (!user || user.status !== 'active') {
        await audit.record({ event: 'password-reset.requested', email, ip, detail: { delivered: false } });
        return;
      }
      const token = randomSecret();
      const expiresAt = new Date(settings.now() + settings.passwordResetTtlMinutes * 60_000);
      const resetUrl = `${settings.passwordResetUrl}${token}`;
      await db.transaction().execute(async (trx) => {
        await resets.insert(trx, { userId: user.id, tokenHash: sha256(token), expiresAt });
        // The link is the delivery: the event is read only by the notifier, inside the system.
        await appendEvents(trx, [
          {
            type: 'user.password-reset-requested',
            aggregateType: 'user',
            aggregateId: user.id,
            aggregateVersion: user.version,
            payload: { userId: user.id, email: user.email, resetUrl, expiresAt: expiresAt.toISOString() },
            metadata,
          },
        ]);
        await audit.record({ event: 'password-reset.requested', userId: user.id, email: user.email, ip, detail: { delivered: true } }, trx);
      });
      if (logger) logger.info({ userId: user.id, email: user.email, resetUrl }, 'password reset link (embedded delivery: no mailer configured)');
    },
    /** Sets a new password with a valid token and revokes every session of the user. */
    async confirm(token: string, password: string, ip: string): Promise<void> {
      const passwordHash = await hashPassword(password);
      const done = await db.transaction().execute(async (trx) => {
        const userId = await resets.consume(trx, sha256(token), new Date(settings.now()));
        if (!userId) return false;
        const user = await users.update(trx, userId, { password_hash: passwordHash });
        if (!user) return false;
        await sessions.revoke(trx, userId, 'password-reset');
        await audit.record({ event: 'password-reset.completed', userId, ip }, trx);
        return true;
      });
      if (!done) {
        throw new AppError('VALIDATION_FAILED', 'The reset token is unknown, used or expired', { fields: [{ field: 'body.token', message: 'is not a valid reset token' }] });
      }
    },
  };
}

export type PasswordResetService = ReturnType<typeof passwordResetService>;
