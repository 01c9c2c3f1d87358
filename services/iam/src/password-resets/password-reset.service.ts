import type { Kysely } from 'kysely';
import { AppError, type Logger } from '@archipelago/platform';
import { appendEvents, type EventMetadata } from '@archipelago/platform/events';
import type { ApiTokenRepository } from '../api-tokens/api-token.repository.ts';
import type { AuditLog } from '../audit/audit.repository.ts';
import { hashPassword } from '../crypto/passwords.ts';
import { randomSecret, sha256 } from '../crypto/secrets.ts';
import type { IamDatabase } from '../database.ts';
import type { LoginThrottle, SessionRepository } from '../sessions/session.repository.ts';
import type { IamSettings } from '../settings.ts';
import type { UserRepository } from '../users/user.repository.ts';
import type { PasswordResetRepository } from './password-reset.repository.ts';

/**
 * Password reset: a single-use token, valid for 30 minutes, mailed to the account's address
 * through the mailer (the link is in the mail alone: the event, the audit log and the service's
 * log never see it). One link lives per account; requests are limited per account and address.
 */
export function passwordResetService(deps: {
  db: Kysely<IamDatabase>;
  users: UserRepository;
  resets: PasswordResetRepository;
  sessions: SessionRepository;
  apiTokens: ApiTokenRepository;
  throttle: LoginThrottle;
  audit: AuditLog;
  settings: IamSettings;
  logger: Logger | false;
}) {
  const { db, users, resets, sessions, apiTokens, throttle, audit, settings, logger } = deps;
  const deliveries = new Set<Promise<void>>();

  const deliver = (userId: string, to: string, resetUrl: string, ip: string) => {
    const minutes = settings.passwordResetTtlMinutes;
    const delivery = settings.mailer
      .send({
        to,
        subject: 'Reset your Archipelago password',
        text: [
          'Someone (hopefully you) asked to reset the password of your Archipelago account.',
          `Open this link within ${minutes} minutes to choose a new one; it works once:`,
          '',
          resetUrl,
          '',
          'If you did not ask for this, ignore this message: your password stays as it is.',
        ].join('\n'),
      })
      .catch(async (error: unknown) => {
        if (logger) logger.warn({ userId, err: error }, 'password reset mail could not be sent');
        await audit.record({ event: 'password-reset.undelivered', userId, ip, detail: { error: (error as Error).message } }).catch(() => undefined);
      })
      .finally(() => deliveries.delete(delivery));
    deliveries.add(delivery);
  };

  return {
    /**
     * Resolves the same way whether or not the email belongs to anyone, and whether or not the
     * request is over its limit; the mail is sent after the answer, so timing tells nothing either.
     */
    async request(email: string, ip: string, metadata: EventMetadata): Promise<void> {
      const account = email.trim().toLowerCase();
      const [accountLimited, ipLimited] = await Promise.all([
        throttle.claim(`reset-account:${account}`, settings.resetAccountThrottle, new Date(settings.now())),
        throttle.claim(`reset-ip:${ip}`, settings.resetIpThrottle, new Date(settings.now())),
      ]);
      const user = await users.findByEmail(email.trim());
      if (accountLimited || ipLimited) {
        await audit.record({ event: 'password-reset.throttled', userId: user?.id ?? null, email, ip, detail: { by: accountLimited ? 'account' : 'address' } });
        return;
      }
      if (!user || user.status !== 'active') {
        await audit.record({ event: 'password-reset.requested', email, ip, detail: { delivered: false } });
        return;
      }
      const token = randomSecret();
      const expiresAt = new Date(settings.now() + settings.passwordResetTtlMinutes * 60_000);
      await db.transaction().execute(async (trx) => {
        await resets.replaceLive(trx, { userId: user.id, tokenHash: sha256(token), expiresAt });
        // Other services may act on the request (e.g. tell the user elsewhere); the link is not theirs to see.
        await appendEvents(trx, [
          {
            type: 'user.password-reset-requested',
            aggregateType: 'user',
            aggregateId: user.id,
            aggregateVersion: user.version,
            payload: { userId: user.id, email: user.email, expiresAt: expiresAt.toISOString() },
            metadata,
          },
        ]);
        await audit.record({ event: 'password-reset.requested', userId: user.id, email: user.email, ip, detail: { delivered: true } }, trx);
      });
      deliver(user.id, user.email, `${settings.passwordResetUrl}${token}`, ip);
    },
    /** Sets a new password with a valid token and revokes every session and API token of the user. */
    async confirm(token: string, password: string, ip: string): Promise<void> {
      const passwordHash = await hashPassword(password);
      const done = await db.transaction().execute(async (trx) => {
        const userId = await resets.consume(trx, sha256(token), new Date(settings.now()));
        if (!userId) return false;
        const user = await users.update(trx, userId, { password_hash: passwordHash });
        if (!user) return false;
        const revokedSessions = await sessions.revoke(trx, userId, 'password-reset');
        const revokedTokens = await apiTokens.revokeAllOfUser(trx, userId);
        await audit.record({ event: 'password-reset.completed', userId, ip, detail: { sessions: revokedSessions.length, apiTokens: revokedTokens } }, trx);
        return true;
      });
      if (!done) {
        throw new AppError('VALIDATION_FAILED', 'The reset token is unknown, used or expired', { fields: [{ field: 'body.token', message: 'is not a valid reset token' }] });
      }
    },
    /** Resolves once every mail being sent has gone (or failed); closing waits for it. */
    async settled(): Promise<void> {
      await Promise.all([...deliveries]);
    },
  };
}

export type PasswordResetService = ReturnType<typeof passwordResetService>;
