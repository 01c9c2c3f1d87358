import { sql, type Insertable, type Kysely, type Transaction, type Updateable } from 'kysely';
import type { IamDatabase } from '../database.ts';
import type { User, UserTable } from './user.table.ts';

export type NewUser = Omit<Insertable<UserTable>, 'id' | 'version' | 'created_at' | 'updated_at' | 'deleted_at'>;
export type UserChanges = Pick<Updateable<UserTable>, 'email' | 'display_name' | 'status' | 'department_code' | 'password_hash'>;

/** The only code that reads or writes users and user_roles. */
export function userRepository(db: Kysely<IamDatabase>) {
  const live = () => db.selectFrom('users').where('deleted_at', 'is', null);
  return {
    async list(options: { limit: number; offset: number; search?: string }): Promise<{ items: User[]; total: number }> {
      let query = live();
      if (options.search) {
        const pattern = `%${options.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
        query = query.where((eb) => eb.or([eb('email', 'ilike', pattern), eb('display_name', 'ilike', pattern)]));
      }
      const [items, count] = await Promise.all([
        query.selectAll().orderBy('email').orderBy('id').limit(options.limit).offset(options.offset).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow(),
      ]);
      return { items, total: count.total };
    },
    async findById(id: string): Promise<User | undefined> {
      return live().selectAll().where('id', '=', id).executeTakeFirst();
    },
    /** A live user, locked until the transaction ends (to compare before and after a change). */
    async lockById(trx: Transaction<IamDatabase>, id: string): Promise<User | undefined> {
      return trx.selectFrom('users').selectAll().where('id', '=', id).where('deleted_at', 'is', null).forUpdate().executeTakeFirst();
    },
    async findByEmail(email: string): Promise<User | undefined> {
      return live().selectAll().where(sql<string>`lower(email)`, '=', email.toLowerCase()).executeTakeFirst();
    },
    /** Role names of each user. */
    async rolesOf(userIds: readonly string[], executor: Kysely<IamDatabase> | Transaction<IamDatabase> = db): Promise<Map<string, string[]>> {
      const roles = new Map<string, string[]>(userIds.map((id) => [id, []]));
      if (userIds.length === 0) return roles;
      const rows = await executor
        .selectFrom('user_roles')
        .innerJoin('roles', 'roles.id', 'user_roles.role_id')
        .select(['user_roles.user_id', 'roles.name'])
        .where('user_roles.user_id', 'in', userIds)
        .orderBy('roles.name')
        .execute();
      for (const row of rows) roles.get(row.user_id)?.push(row.name);
      return roles;
    },
    /** Undefined when a live user has this email (case-insensitively). */
    async insert(trx: Transaction<IamDatabase>, user: NewUser): Promise<User | undefined> {
      return trx
        .insertInto('users')
        .values(user)
        .onConflict((oc) => oc.expression(sql`lower(email)`).where('deleted_at', 'is', null).doNothing())
        .returningAll()
        .executeTakeFirst();
    },
    async update(trx: Transaction<IamDatabase>, id: string, changes: UserChanges): Promise<User | undefined> {
      return trx
        .updateTable('users')
        .set({ ...changes, version: sql<number>`version + 1`, updated_at: sql<Date>`now()` })
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
    },
    async softDelete(trx: Transaction<IamDatabase>, id: string): Promise<User | undefined> {
      return trx
        .updateTable('users')
        .set({ deleted_at: sql<Date>`now()`, status: 'disabled', version: sql<number>`version + 1`, updated_at: sql<Date>`now()` })
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
    },
    async setRoles(trx: Transaction<IamDatabase>, userId: string, roleIds: readonly string[]): Promise<void> {
      await trx.deleteFrom('user_roles').where('user_id', '=', userId).execute();
      if (roleIds.length > 0) await trx.insertInto('user_roles').values(roleIds.map((role_id) => ({ user_id: userId, role_id }))).execute();
    },
    /** Which of `ids` exist (not deleted), and whether they are active. */
    async validate(ids: readonly string[]): Promise<{ id: string; active: boolean }[]> {
      if (ids.length === 0) return [];
      const rows = await live().select(['id', 'status']).where('id', 'in', ids).orderBy('id').execute();
      return rows.map((r) => ({ id: r.id, active: r.status === 'active' }));
    },
    /** Live users after `after` in id order, for reconciliation. */
    async exportAfter(after: string | undefined, limit: number): Promise<User[]> {
      let query = live().selectAll().orderBy('id').limit(limit);
      if (after) query = query.where('id', '>', after);
      return query.execute();
    },
  };
}

export type UserRepository = ReturnType<typeof userRepository>;
