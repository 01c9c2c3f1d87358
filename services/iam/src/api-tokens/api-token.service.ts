import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { AppError } from '@archipelago/platform';
import { markIdempotentWrite } from '@archipelago/platform/idempotency';
import { API_TOKEN_PATTERN, permissionCovers, permissionsOfRoles, type ApiTokenIdentity, type AuthorizationData } from '@archipelago/platform/auth';
import type { AuditLog } from '../audit/audit.repository.ts';
import type { IamDatabase } from '../database.ts';
import { randomSecret, sameBytes, sha256 } from '../crypto/secrets.ts';
import type { UserRepository } from '../users/user.repository.ts';
import type { ApiTokenRepository } from './api-token.repository.ts';
import type { ApiToken } from './api-token.table.ts';

export function apiTokenDto(token: ApiToken, usage: readonly { day: string; count: number }[]) {
  return {
    id: token.id,
    name: token.name,
    prefix: token.prefix,
    scopes: token.scopes,
    expires_at: token.expires_at.toISOString(),
    last_used_at: token.last_used_at?.toISOString() ?? null,
    created_at: token.created_at.toISOString(),
    usage: [...usage],
  };
}

/** API tokens for machine clients: stored hashed, shown once, scoped within the owner's permissions. */
export function apiTokenService(deps: {
  db: Kysely<IamDatabase>;
  tokens: ApiTokenRepository;
  users: UserRepository;
  audit: AuditLog;
  authorization: () => Promise<AuthorizationData>;
  now: () => number;
}) {
  const { db, tokens, users, audit, authorization, now } = deps;
  const ownerPermissions = async (userId: string): Promise<string[]> =>
    permissionsOfRoles(await authorization(), (await users.rolesOf([userId])).get(userId) ?? []);

  return {
    async create(userId: string, input: { name: string; scopes: readonly string[]; expiresInDays: number }) {
      const held = await ownerPermissions(userId);
      const beyond = input.scopes.filter((scope) => !held.some((p) => permissionCovers(p, scope)));
      if (beyond.length > 0) {
        throw new AppError('FORBIDDEN', `A token cannot have scopes its owner lacks: ${beyond.join(', ')}`, {
          fields: beyond.map((value) => ({ field: 'body.scopes', message: 'is not a permission of yours', value })),
        });
      }
      const prefix = `ak${randomBytes(6).toString('hex')}`;
      const secret = randomSecret();
      // The token, its audit entry and the request's Idempotency-Key commit together: a retry never mints a second token.
      const token = await db.transaction().execute(async (trx) => {
        const inserted = await tokens.insert(
          { userId, name: input.name, prefix, secretHash: sha256(secret), scopes: [...new Set(input.scopes)].sort(), expiresAt: new Date(now() + input.expiresInDays * 86_400_000) },
          trx,
        );
        await audit.record({ event: 'api-token.created', userId, detail: { tokenId: inserted.id, prefix, scopes: inserted.scopes } }, trx);
        await markIdempotentWrite(trx);
        return inserted;
      });
      return { ...apiTokenDto(token, []), token: `${prefix}_${secret}` };
    },
    async list(userId: string) {
      const own = await tokens.listOfUser(userId);
      const usage = await tokens.usage(own.map((t) => t.id), 30);
      return own.map((t) => apiTokenDto(t, usage.get(t.id) ?? []));
    },
    async revoke(userId: string, id: string): Promise<void> {
      if (!(await tokens.revoke(userId, id))) throw new AppError('NOT_FOUND', `API token ${id} does not exist`);
      await audit.record({ event: 'api-token.revoked', userId, detail: { tokenId: id } });
    },
    /** Who a presented token stands for (counting the use), or null. */
    async introspect(presented: string): Promise<ApiTokenIdentity | null> {
      const match = API_TOKEN_PATTERN.exec(presented);
      if (!match) return null;
      const token = await tokens.findByPrefix(match[1]!);
      if (!token || !sameBytes(token.secret_hash, sha256(match[2]!))) return null;
      if (token.revoked_at || token.expires_at.getTime() <= now()) return null;
      const owner = await users.findById(token.user_id);
      if (!owner || owner.status !== 'active') return null;
      const roles = (await users.rolesOf([owner.id])).get(owner.id) ?? [];
      const held = permissionsOfRoles(await authorization(), roles);
      await tokens.recordUse(token.id, new Date(now()));
      return {
        tokenId: token.id,
        userId: owner.id,
        roles,
        scopes: token.scopes.filter((scope) => held.some((p) => permissionCovers(p, scope))),
        departmentCode: owner.department_code,
      };
    },
  };
}

export type ApiTokenService = ReturnType<typeof apiTokenService>;
