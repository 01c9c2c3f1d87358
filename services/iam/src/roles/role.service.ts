import type { Kysely, Transaction } from 'kysely';
import { AppError } from '@archipelago/platform';
import { appendEvents } from '@archipelago/platform/events';
import type { AuditLog, ChangeMetadata } from '../audit/audit.repository.ts';
import type { IamDatabase } from '../database.ts';
import type { RoleRepository } from './role.repository.ts';
import type { Role } from './role.table.ts';

export function roleDto(role: Role, permissions: readonly string[]) {
  return { id: role.id, name: role.name, description: role.description, permissions: [...permissions], version: role.version };
}

export type RoleDto = ReturnType<typeof roleDto>;

/** The rules of roles: a change of a role's permissions commits with `role.permissions-changed`. */
export function roleService(deps: { db: Kysely<IamDatabase>; roles: RoleRepository; audit: AuditLog }) {
  const { db, roles, audit } = deps;

  const permissionIds = async (names: readonly string[]): Promise<string[]> => {
    const found = await roles.permissionsByName(names);
    const missing = names.filter((n) => !found.some((p) => p.name === n));
    if (missing.length > 0) {
      throw new AppError('VALIDATION_FAILED', `Unknown permission${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`, {
        fields: missing.map((value) => ({ field: 'body.permissions', message: 'is not a permission', value })),
      });
    }
    return found.map((p) => p.id);
  };

  const changed = async (trx: Transaction<IamDatabase>, role: Role, permissions: readonly string[], metadata: ChangeMetadata, deleted = false) => {
    await appendEvents(trx, [
      { type: 'role.permissions-changed', aggregateType: 'role', aggregateId: role.name, aggregateVersion: role.version, payload: { role: role.name, permissions, deleted }, metadata },
    ]);
    await audit.record({ event: 'role.permissions-changed', userId: metadata.userId ?? null, ip: metadata.ip ?? null, detail: { role: role.name, permissions, deleted, by: metadata.userId ?? null } }, trx);
  };

  return {
    async create(input: { name: string; description?: string; permissions?: readonly string[] }, metadata: ChangeMetadata): Promise<RoleDto> {
      const names = [...new Set(input.permissions ?? [])].sort();
      const ids = await permissionIds(names);
      return db.transaction().execute(async (trx) => {
        const inserted = await roles.insertRole(trx, { name: input.name, description: input.description ?? '' });
        if (!inserted) throw new AppError('CONFLICT', `Role ${input.name} already exists`, { fields: [{ field: 'body.name', message: 'is taken', value: input.name }] });
        const role = await roles.setRolePermissions(trx, inserted.id, ids);
        await changed(trx, role, names, metadata);
        return roleDto(role, names);
      });
    },
    async describe(name: string, description: string): Promise<RoleDto> {
      const role = await db.transaction().execute((trx) => roles.updateRole(trx, name, { description }));
      if (!role) throw new AppError('NOT_FOUND', `Role ${name} does not exist`);
      return roleDto(role, (await roles.permissionsOf([role.id])).get(role.id) ?? []);
    },
    async setPermissions(name: string, permissions: readonly string[], metadata: ChangeMetadata): Promise<RoleDto> {
      const names = [...new Set(permissions)].sort();
      const ids = await permissionIds(names);
      return db.transaction().execute(async (trx) => {
        const existing = await roles.lockRole(trx, name);
        if (!existing) throw new AppError('NOT_FOUND', `Role ${name} does not exist`);
        const role = await roles.setRolePermissions(trx, existing.id, ids);
        await changed(trx, role, names, metadata);
        return roleDto(role, names);
      });
    },
    async remove(name: string, metadata: ChangeMetadata): Promise<void> {
      if (name === 'admin') throw new AppError('CONFLICT', 'The admin role cannot be deleted');
      await db.transaction().execute(async (trx) => {
        const role = await roles.deleteRole(trx, name);
        if (!role) throw new AppError('NOT_FOUND', `Role ${name} does not exist`);
        await changed(trx, { ...role, version: role.version + 1 }, [], metadata, true);
      });
    },
  };
}

export type RoleService = ReturnType<typeof roleService>;
