import type { Kysely } from 'kysely';
import { AppError } from '@archipelago/platform';
import { markIdempotentWrite } from '@archipelago/platform/idempotency';
import type { AuditLog, ChangeMetadata } from '../audit/audit.repository.ts';
import type { IamDatabase } from '../database.ts';
import type { PolicyInput, PolicyRepository } from './policy.repository.ts';

const nameTaken = (name: string) => new AppError('CONFLICT', `Policy ${name} already exists`, { fields: [{ field: 'body.name', message: 'is taken', value: name }] });
const notFound = (id: string) => new AppError('NOT_FOUND', `Policy ${id} does not exist`);

/** Policy changes: each commits together with its audit entry (who, and the policy before and after) and its Idempotency-Key. */
export function policyService(deps: { db: Kysely<IamDatabase>; policies: PolicyRepository; audit: AuditLog }) {
  const { db, policies, audit } = deps;
  return {
    async create(input: PolicyInput, metadata: ChangeMetadata) {
      const by = metadata.userId ?? null;
      return db.transaction().execute(async (trx) => {
        const id = await policies.insert(trx, input);
        if (!id) throw nameTaken(input.name);
        const created = (await policies.find(id, trx))!;
        await audit.record({ event: 'policy.created', userId: by, ip: metadata.ip ?? null, detail: { by, policy: created } }, trx);
        await markIdempotentWrite(trx);
        return created;
      });
    },
    async replace(id: string, input: PolicyInput, metadata: ChangeMetadata) {
      const by = metadata.userId ?? null;
      return db.transaction().execute(async (trx) => {
        const before = await policies.find(id, trx, true);
        if (!before) throw notFound(id);
        try {
          await policies.replace(trx, id, input);
        } catch (error) {
          if ((error as { code?: string }).code === '23505') throw nameTaken(input.name);
          throw error;
        }
        const after = (await policies.find(id, trx))!;
        await audit.record({ event: 'policy.updated', userId: by, ip: metadata.ip ?? null, detail: { by, policy: { ...after, previous: before } } }, trx);
        await markIdempotentWrite(trx);
        return after;
      });
    },
    async remove(id: string, metadata: ChangeMetadata): Promise<void> {
      const by = metadata.userId ?? null;
      await db.transaction().execute(async (trx) => {
        const policy = await policies.find(id, trx, true);
        if (!policy || !(await policies.delete(trx, id))) throw notFound(id);
        await audit.record({ event: 'policy.deleted', userId: by, ip: metadata.ip ?? null, detail: { by, policy } }, trx);
        await markIdempotentWrite(trx);
      });
    },
  };
}

export type PolicyService = ReturnType<typeof policyService>;
