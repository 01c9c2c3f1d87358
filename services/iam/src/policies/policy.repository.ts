import { sql, type Kysely, type Transaction } from 'kysely';
import type { PolicyCondition, PolicyEffect } from '@archipelago/platform/auth';
import type { IamDatabase } from '../database.ts';

export interface PolicyInput {
  readonly name: string;
  readonly description: string;
  readonly effect: PolicyEffect;
  readonly permission: string;
  readonly roleId: string | null;
  readonly condition: PolicyCondition;
}

type Executor = Kysely<IamDatabase> | Transaction<IamDatabase>;

/** The only code that reads or writes policies; rows come with their role's name. */
export function policyRepository(db: Kysely<IamDatabase>) {
  const withRole = (executor: Executor = db) =>
    executor
      .selectFrom('policies')
      .leftJoin('roles', 'roles.id', 'policies.role_id')
      .select(['policies.id', 'policies.name', 'policies.description', 'policies.effect', 'policies.permission', 'roles.name as role', 'policies.condition', 'policies.created_at', 'policies.updated_at']);
  const row = (p: PolicyInput) => ({ name: p.name, description: p.description, effect: p.effect, permission: p.permission, role_id: p.roleId, condition: p.condition });
  return {
    async list(page: { limit: number; offset: number }) {
      const [items, count] = await Promise.all([
        withRole().orderBy('policies.name').limit(page.limit).offset(page.offset).execute(),
        db.selectFrom('policies').select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow(),
      ]);
      return { items, total: count.total };
    },
    /** One policy; `lock` keeps it from changing until the transaction ends. */
    async find(id: string, executor: Executor = db, lock = false) {
      const query = withRole(executor).where('policies.id', '=', id);
      return (lock ? query.forUpdate('policies') : query).executeTakeFirst();
    },
    /** Undefined when the name is taken. */
    async insert(trx: Transaction<IamDatabase>, policy: PolicyInput): Promise<string | undefined> {
      const inserted = await trx.insertInto('policies').values(row(policy)).onConflict((oc) => oc.column('name').doNothing()).returning('id').executeTakeFirst();
      return inserted?.id;
    },
    async replace(trx: Transaction<IamDatabase>, id: string, policy: PolicyInput): Promise<boolean> {
      const result = await trx.updateTable('policies').set({ ...row(policy), updated_at: sql<Date>`now()` }).where('id', '=', id).executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },
    async delete(trx: Transaction<IamDatabase>, id: string): Promise<boolean> {
      const result = await trx.deleteFrom('policies').where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows > 0n;
    },
  };
}

export type PolicyRepository = ReturnType<typeof policyRepository>;
