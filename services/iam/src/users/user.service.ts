import type { Kysely, Transaction } from 'kysely';
import { AppError } from '@archipelago/platform';
import { appendEvents, type EventMetadata } from '@archipelago/platform/events';
import type { ApiTokenRepository } from '../api-tokens/api-token.repository.ts';
import type { AuditLog, ChangeMetadata } from '../audit/audit.repository.ts';
import type { DepartmentDirectory } from '../departments/department.directory.ts';
import { hashPassword } from '../crypto/passwords.ts';
import type { IamDatabase } from '../database.ts';
import type { RoleRepository } from '../roles/role.repository.ts';
import type { SessionRepository } from '../sessions/session.repository.ts';
import type { NewUser, UserChanges, UserRepository } from './user.repository.ts';
import { userDto, type UserDto } from './user.dto.ts';
import type { User, UserStatus } from './user.table.ts';

const emailTaken = (email: string) =>
  new AppError('CONFLICT', `A user with email ${email} already exists`, { fields: [{ field: 'body.email', message: 'is taken by another user', value: email }] });

export interface UserInput {
  readonly email: string;
  readonly display_name: string;
  readonly password?: string;
  readonly status?: UserStatus;
  readonly department_code?: string | null;
  readonly roles?: readonly string[];
}

/** The rules of users: each change commits with its event (user.created/updated/deleted). */
export function userService(deps: {
  db: Kysely<IamDatabase>;
  users: UserRepository;
  roles: RoleRepository;
  sessions: SessionRepository;
  apiTokens: ApiTokenRepository;
  departments: DepartmentDirectory;
  audit: AuditLog;
}) {
  const { db, users, roles, sessions, apiTokens, departments, audit } = deps;

  const roleIds = async (names: readonly string[]): Promise<string[]> => {
    const found = await roles.rolesByName(names);
    const missing = names.filter((n) => !found.some((r) => r.name === n));
    if (missing.length > 0) {
      throw new AppError('VALIDATION_FAILED', `Unknown role${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`, {
        fields: missing.map((value) => ({ field: 'body.roles', message: 'is not a role', value })),
      });
    }
    return found.map((r) => r.id);
  };

  const publish = async (trx: Transaction<IamDatabase>, type: 'user.created' | 'user.updated' | 'user.deleted', user: User, metadata: EventMetadata) => {
    const names = (await users.rolesOf([user.id], trx)).get(user.id) ?? [];
    const dto = userDto(user, names);
    await appendEvents(trx, [{ type, aggregateType: 'user', aggregateId: user.id, aggregateVersion: user.version, payload: dto, metadata }]);
    return dto;
  };

  return {
    async create(input: UserInput, metadata: ChangeMetadata): Promise<UserDto> {
      const ids = await roleIds(input.roles ?? []);
      if (input.department_code) await departments.requireLive(input.department_code, 'body.department_code');
      const record: NewUser = {
        email: input.email,
        display_name: input.display_name,
        status: input.status ?? 'active',
        department_code: input.department_code ?? null,
        password_hash: input.password ? await hashPassword(input.password) : null,
      };
      return db.transaction().execute(async (trx) => {
        const user = await users.insert(trx, record);
        if (!user) throw emailTaken(input.email);
        await users.setRoles(trx, user.id, ids);
        await audit.record({ event: 'user.created', userId: user.id, email: user.email, ip: metadata.ip ?? null, detail: { by: metadata.userId ?? null, status: user.status, department: user.department_code, roles: input.roles ?? [] } }, trx);
        return publish(trx, 'user.created', user, metadata);
      });
    },
    /** Changes a user; a new password or disabling ends their sessions, a new password their API tokens too. Each change is audited. */
    async update(id: string, input: Partial<Omit<UserInput, 'roles'>>, metadata: ChangeMetadata): Promise<UserDto> {
      if (input.department_code) await departments.requireLive(input.department_code, 'body.department_code');
      const changes: UserChanges = {
        email: input.email,
        display_name: input.display_name,
        status: input.status,
        department_code: input.department_code,
        password_hash: input.password ? await hashPassword(input.password) : undefined,
      };
      return db.transaction().execute(async (trx) => {
        const before = await users.lockById(trx, id);
        if (!before) throw new AppError('NOT_FOUND', `User ${id} does not exist`);
        let user: User | undefined;
        try {
          user = await users.update(trx, id, changes);
        } catch (error) {
          if ((error as { code?: string }).code === '23505') throw emailTaken(input.email ?? '');
          throw error;
        }
        if (!user) throw new AppError('NOT_FOUND', `User ${id} does not exist`);
        const by = metadata.userId ?? null;
        if (input.password) {
          const revokedSessions = await sessions.revoke(trx, id, 'password-changed');
          const revokedTokens = await apiTokens.revokeAllOfUser(trx, id);
          await audit.record({ event: 'password.changed', userId: id, email: user.email, ip: metadata.ip ?? null, detail: { by, sessions: revokedSessions.length, apiTokens: revokedTokens } }, trx);
        }
        if (input.status === 'disabled') await sessions.revoke(trx, id, 'user-disabled');
        if (before.status !== user.status) await audit.record({ event: user.status === 'disabled' ? 'user.disabled' : 'user.enabled', userId: id, email: user.email, ip: metadata.ip ?? null, detail: { by } }, trx);
        if (before.department_code !== user.department_code) {
          await audit.record({ event: 'user.department-changed', userId: id, email: user.email, ip: metadata.ip ?? null, detail: { by, from: before.department_code, to: user.department_code } }, trx);
        }
        if (before.email !== user.email) await audit.record({ event: 'user.email-changed', userId: id, email: user.email, ip: metadata.ip ?? null, detail: { by, from: before.email, to: user.email } }, trx);
        return publish(trx, 'user.updated', user, metadata);
      });
    },
    /** Replaces the user's roles; their next access token carries them. */
    async setRoles(id: string, names: readonly string[], metadata: ChangeMetadata): Promise<UserDto> {
      const ids = await roleIds(names);
      return db.transaction().execute(async (trx) => {
        const user = await users.update(trx, id, {});
        if (!user) throw new AppError('NOT_FOUND', `User ${id} does not exist`);
        await users.setRoles(trx, id, ids);
        await audit.record({ event: 'roles.changed', userId: id, ip: metadata.ip ?? null, detail: { roles: names, by: metadata.userId ?? null } }, trx);
        return publish(trx, 'user.updated', user, metadata);
      });
    },
    async remove(id: string, metadata: ChangeMetadata): Promise<void> {
      await db.transaction().execute(async (trx) => {
        const user = await users.softDelete(trx, id);
        if (!user) throw new AppError('NOT_FOUND', `User ${id} does not exist`);
        await sessions.revoke(trx, id, 'user-deleted');
        await apiTokens.revokeAllOfUser(trx, id);
        await audit.record({ event: 'user.deleted', userId: id, email: user.email, ip: metadata.ip ?? null, detail: { by: metadata.userId ?? null } }, trx);
        await publish(trx, 'user.deleted', user, metadata);
      });
    },
  };
}

export type UserService = ReturnType<typeof userService>;
