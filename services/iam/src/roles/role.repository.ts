import { sql, type Kysely, type Transaction } from 'kysely';
import type { AuthorizationData } from '@archipelago/platform/auth';
import type { IamDatabase } from '../database.ts';
import type { Permission, Role } from './role.table.ts';

/** The only code that reads or writes roles, permissions and role_permissions. */
export function roleRepository(db: Kysely<IamDatabase>) {
  return {
    async listRoles(page: { limit: number; offset: number }): Promise<{ items: Role[]; total: number }> {
      const [items, count] = await Promise.all([
        db.selectFrom('roles').selectAll().orderBy('name').limit(page.limit).offset(page.offset).execute(),
        db.selectFrom('roles').select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow(),
      ]);
      return { items, total: count.total };
    },
    async findRole(name: string): Promise<Role | undefined> {
      return db.selectFrom('roles').selectAll().where('name', '=', name).executeTakeFirst();
    },
    /** The role, locked until the transaction ends: concurrent changes of it take turns. */
    async lockRole(trx: Transaction<IamDatabase>, name: string): Promise<Role | undefined> {
      return trx.selectFrom('roles').selectAll().where('name', '=', name).forUpdate().executeTakeFirst();
    },
    async rolesByName(names: readonly string[]): Promise<Role[]> {
      if (names.length === 0) return [];
      return db.selectFrom('roles').selectAll().where('name', 'in', names).execute();
    },
    async insertRole(trx: Transaction<IamDatabase>, role: { name: string; description: string }): Promise<Role | undefined> {
      return trx.insertInto('roles').values(role).onConflict((oc) => oc.column('name').doNothing()).returningAll().executeTakeFirst();
    },
    async updateRole(trx: Transaction<IamDatabase>, name: string, changes: { description: string }): Promise<Role | undefined> {
      return trx.updateTable('roles').set({ ...changes, updated_at: sql<Date>`now()` }).where('name', '=', name).returningAll().executeTakeFirst();
    },
    async deleteRole(trx: Transaction<IamDatabase>, name: string): Promise<Role | undefined> {
      return trx.deleteFrom('roles').where('name', '=', name).returningAll().executeTakeFirst();
    },
    /** Permission names per role id. */
    async permissionsOf(roleIds: readonly string[]): Promise<Map<string, string[]>> {
      const result = new Map<string, string[]>(roleIds.map((id) => [id, []]));
      if (roleIds.length === 0) return result;
      const rows = await db
        .selectFrom('role_permissions')
        .innerJoin('permissions', 'permissions.id', 'role_permissions.permission_id')
        .select(['role_permissions.role_id', 'permissions.name'])
        .where('role_permissions.role_id', 'in', roleIds)
        .orderBy('permissions.name')
        .execute();
      for (const row of rows) result.get(row.role_id)?.push(row.name);
      return result;
    },
    /** Replaces a role's permissions and bumps its version. */
    async setRolePermissions(trx: Transaction<IamDatabase>, roleId: string, permissionIds: readonly string[]): Promise<Role> {
      await trx.deleteFrom('role_permissions').where('role_id', '=', roleId).execute();
      if (permissionIds.length > 0) {
        await trx.insertInto('role_permissions').values(permissionIds.map((permission_id) => ({ role_id: roleId, permission_id }))).execute();
      }
      return trx
        .updateTable('roles')
        .set({ version: sql<number>`version + 1`, updated_at: sql<Date>`now()` })
        .where('id', '=', roleId)
        .returningAll()
        .executeTakeFirstOrThrow();
    },
    async listPermissions(page: { limit: number; offset: number }): Promise<{ items: Permission[]; total: number }> {
      const [items, count] = await Promise.all([
        db.selectFrom('permissions').selectAll().orderBy('name').limit(page.limit).offset(page.offset).execute(),
        db.selectFrom('permissions').select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow(),
      ]);
      return { items, total: count.total };
    },
    async permissionsByName(names: readonly string[]): Promise<Permission[]> {
      if (names.length === 0) return [];
      return db.selectFrom('permissions').selectAll().where('name', 'in', names).execute();
    },
    /** Whether a permission of that name exists; `resource:*` matches any of the resource's. */
    async permissionExists(pattern: string): Promise<boolean> {
      const query = db.selectFrom('permissions').select('id');
      const found = pattern.endsWith(':*')
        ? await query.where('name', 'like', `${pattern.slice(0, -1).replace(/[\\%_]/g, '\\$&')}%`).executeTakeFirst()
        : await query.where('name', '=', pattern).executeTakeFirst();
      return found !== undefined;
    },
    async insertPermission(permission: { name: string; description: string }): Promise<Permission | undefined> {
      return db.insertInto('permissions').values(permission).onConflict((oc) => oc.column('name').doNothing()).returningAll().executeTakeFirst();
    },
    /** Deletes a permission no role holds; 'in-use' when one does. */
    async deletePermission(name: string): Promise<'deleted' | 'missing' | 'in-use'> {
      return db.transaction().execute(async (trx) => {
        const permission = await trx.selectFrom('permissions').select('id').where('name', '=', name).forUpdate().executeTakeFirst();
        if (!permission) return 'missing';
        const used = await trx.selectFrom('role_permissions').select('role_id').where('permission_id', '=', permission.id).executeTakeFirst();
        if (used) return 'in-use';
        await trx.deleteFrom('permissions').where('id', '=', permission.id).execute();
        return 'deleted';
      });
    },
    /** The role → permission map and every policy: what services cache to authorize. */
    async authorizationData(): Promise<AuthorizationData> {
      const [grants, policies] = await Promise.all([
        db
          .selectFrom('roles')
          .leftJoin('role_permissions', 'role_permissions.role_id', 'roles.id')
          .leftJoin('permissions', 'permissions.id', 'role_permissions.permission_id')
          .select(['roles.name as role', 'permissions.name as permission'])
          .orderBy('roles.name')
          .orderBy('permissions.name')
          .execute(),
        db
          .selectFrom('policies')
          .leftJoin('roles', 'roles.id', 'policies.role_id')
          .select(['policies.name', 'policies.effect', 'policies.permission', 'roles.name as role', 'policies.condition'])
          .orderBy('policies.name')
          .execute(),
      ]);
      const roles: Record<string, string[]> = {};
      for (const { role, permission } of grants) {
        roles[role] ??= [];
        if (permission) roles[role].push(permission);
      }
      return { roles, policies };
    },
  };
}

export type RoleRepository = ReturnType<typeof roleRepository>;
