import type { Kysely } from 'kysely';
import { AppError } from '@archipelago/platform';
import type { IamDatabase } from '../database.ts';
import type { AuditLog } from '../audit/audit.repository.ts';
import { verifyPassword } from '../crypto/passwords.ts';
import { randomSecret, sha256 } from '../crypto/secrets.ts';
import type { KeyStore } from '../keys/key-store.ts';
import type { IamSettings } from '../settings.ts';
import type { UserRepository } from '../users/user.repository.ts';
import type { User } from '../users/user.table.ts';
import type { LoginThrottle, SessionRepository } from './session.repository.ts';

/** A sign-in refused because the account or the address is locked out for a while. */
export class LoginLockedError extends AppError {
  constructor(readonly retryAfterSeconds: number) {
    super('RATE_LIMITED', `Too many failed sign-ins; try again in ${retryAfterSeconds} s`);
  }
}

export interface TokenPair {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly tokenType: 'Bearer';
  readonly expiresIn: number;
}

export interface ClientInfo {
  readonly ip: string;
  readonly userAgent: string | null;
}

const BAD_CREDENTIALS = 'The email or the password is wrong';

/** Sign-in, refresh-token rotation with reuse detection, sign-out. */
export function authService(deps: {
  db: Kysely<IamDatabase>;
  users: UserRepository;
  sessions: SessionRepository;
  throttle: LoginThrottle;
  keys: KeyStore;
  audit: AuditLog;
  settings: IamSettings;
}) {
  const { db, users, sessions, throttle, keys, audit, settings } = deps;
  const now = () => new Date(settings.now());

  const accessToken = async (user: User, sessionId: string) => {
    const roles = (await users.rolesOf([user.id])).get(user.id) ?? [];
    return keys.signAccessToken({ userId: user.id, sessionId, roles, departmentCode: user.department_code });
  };

  return {
    /**
     * Same answer and about the same time for an unknown email and a wrong password. Guessing is
     * slowed per account and address (progressive delays), per address, and per account across
     * addresses; the last spares addresses the account signed in from before, so an attacker
     * cannot lock the owner out (OWASP, Keycloak's brute-force detection).
     */
    async login(email: string, password: string, client: ClientInfo): Promise<TokenPair> {
      const account = email.trim().toLowerCase();
      const keys = { pair: `pair:${account}|${client.ip}`, account: `account:${account}`, ip: `ip:${client.ip}` };
      const user = await users.findByEmail(email.trim());
      // Attempts are counted before the (slow) password check, so parallel guesses cannot outrun the lockout.
      const [pairLock, accountLock, ipLock] = await Promise.all([
        throttle.claim(keys.pair, settings.pairThrottle, now()),
        throttle.claim(keys.account, settings.accountThrottle, now()),
        throttle.claim(keys.ip, settings.ipThrottle, now()),
      ]);
      const knownAddress = accountLock !== undefined && user !== undefined && (await sessions.signedInFrom(user.id, client.ip, new Date(settings.now() - settings.sessionTtlDays * 86_400_000)));
      const locks = { 'account-and-address': pairLock, address: ipLock, account: knownAddress ? undefined : accountLock };
      const lockedUntil = Object.values(locks).filter((d): d is Date => d !== undefined).sort((a, b) => b.getTime() - a.getTime())[0];
      if (lockedUntil) {
        const by = Object.entries(locks).filter(([, until]) => until !== undefined).map(([name]) => name);
        await audit.record({ event: 'login.locked', email, userId: user?.id ?? null, ip: client.ip, detail: { by } });
        throw new LoginLockedError(Math.max(1, Math.ceil((lockedUntil.getTime() - now().getTime()) / 1000)));
      }
      const passwordOk = await verifyPassword(user?.password_hash, password);
      if (!user || !passwordOk || user.status !== 'active') {
        await audit.record({ event: 'login.failure', email, userId: user?.id ?? null, ip: client.ip, detail: { reason: !user ? 'unknown-email' : !passwordOk ? 'wrong-password' : 'disabled' } });
        throw new AppError('UNAUTHENTICATED', BAD_CREDENTIALS);
      }
      // Limits count failures, not sign-ins: this address proved it knows the password.
      await Promise.all([throttle.clear(keys.pair), throttle.forgive(keys.account, settings.accountThrottle), throttle.forgive(keys.ip, settings.ipThrottle)]);
      const refreshToken = randomSecret();
      const session = await db.transaction().execute(async (trx) => {
        const created = await sessions.create(trx, {
          userId: user.id,
          userAgent: client.userAgent?.slice(0, 300) ?? null,
          ip: client.ip,
          expiresAt: new Date(settings.now() + settings.sessionTtlDays * 86_400_000),
          tokenHash: sha256(refreshToken),
        });
        await audit.record({ event: 'login.success', userId: user.id, email: user.email, ip: client.ip, detail: { sessionId: created.id } }, trx);
        return created;
      });
      const access = await accessToken(user, session.id);
      return { accessToken: access.token, refreshToken, tokenType: 'Bearer', expiresIn: access.expiresIn };
    },

    /** Rotates a refresh token; presenting one already used revokes its whole session. */
    async refresh(refreshToken: string, client: ClientInfo): Promise<TokenPair> {
      const next = randomSecret();
      const outcome = await db.transaction().execute(async (trx) => {
        const hash = sha256(refreshToken);
        const found = await sessions.lockRefreshToken(trx, hash);
        if (!found) return { kind: 'unknown' as const };
        if (found.used_at) {
          await sessions.revoke(trx, found.user_id, 'refresh-token-reuse', found.session_id);
          await audit.record({ event: 'refresh.reuse', userId: found.user_id, ip: client.ip, detail: { sessionId: found.session_id } }, trx);
          return { kind: 'reused' as const };
        }
        if (found.revoked_at || found.expires_at <= now()) return { kind: 'ended' as const };
        await sessions.rotate(trx, found.session_id, hash, sha256(next), now());
        return { kind: 'rotated' as const, userId: found.user_id, sessionId: found.session_id };
      });
      if (outcome.kind === 'reused') throw new AppError('UNAUTHENTICATED', 'This refresh token was already used; the session is revoked, sign in again');
      if (outcome.kind !== 'rotated') throw new AppError('UNAUTHENTICATED', 'The refresh token is unknown, expired or revoked');
      const user = await users.findById(outcome.userId);
      if (!user || user.status !== 'active') throw new AppError('UNAUTHENTICATED', 'The account is disabled');
      const access = await accessToken(user, outcome.sessionId);
      return { accessToken: access.token, refreshToken: next, tokenType: 'Bearer', expiresIn: access.expiresIn };
    },

    /** Ends the session of a refresh token; an unknown token is not an error. */
    async logout(refreshToken: string, client: ClientInfo): Promise<void> {
      await db.transaction().execute(async (trx) => {
        const found = await sessions.lockRefreshToken(trx, sha256(refreshToken));
        if (!found) return;
        await sessions.revoke(trx, found.user_id, 'logout', found.session_id);
        await audit.record({ event: 'logout', userId: found.user_id, ip: client.ip, detail: { sessionId: found.session_id } }, trx);
      });
    },

    listSessions: (userId: string) => sessions.listActive(userId, now()),

    /** Revokes one of the user's sessions, or all of them; 404 when there is no such session. */
    async revokeSessions(userId: string, client: ClientInfo, sessionId?: string): Promise<void> {
      const revoked = await sessions.revoke(db, userId, 'revoked-by-user', sessionId);
      if (sessionId && revoked.length === 0) throw new AppError('NOT_FOUND', `Session ${sessionId} does not exist or is already revoked`);
      await audit.record({ event: 'session.revoked', userId, ip: client.ip, detail: { sessions: revoked } });
    },
  };
}

export type AuthService = ReturnType<typeof authService>;
