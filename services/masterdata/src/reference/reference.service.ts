import type { Kysely, Transaction } from 'kysely';
import { AppError } from '@archipelago/platform';
import { appendEvents } from '@archipelago/platform/events';
import type { Change } from '@archipelago/platform/auth';
import type { MasterdataDatabase } from '../database.ts';
import { referenceDto, type ReferenceDto, type ReferenceRow } from './reference.entity.ts';
import type { ReferenceRepository } from './reference.repository.ts';

type Action = 'created' | 'updated' | 'deleted';
type Values = Readonly<Record<string, unknown>>;

/**
 * The rules of one reference entity: every change and its event commit together, a parent code
 * must name a live parent row, and a row with live children cannot be deleted.
 * `all` holds the repositories of every entity, so parents and children can be found.
 */
export function referenceService(db: Kysely<MasterdataDatabase>, all: readonly ReferenceRepository[], own: ReferenceRepository) {
  const entity = own.entity;
  const parent = entity.parent && all.find((repository) => repository.entity.name === entity.parent?.entity.name);
  const children = all.filter((repository) => repository.entity.parent?.entity.name === entity.name);

  const record = async (trx: Transaction<MasterdataDatabase>, action: Action, row: ReferenceRow, change: Change) => {
    const dto = referenceDto(entity, row);
    await appendEvents(trx, [
      { type: `${entity.name}.${action}`, aggregateType: entity.name, aggregateId: row.code, aggregateVersion: row.version, payload: dto, metadata: change.metadata },
    ]);
    return dto;
  };

  // Locks the parent row (FOR SHARE) so that it cannot be deleted before this transaction ends.
  const checkParent = async (trx: Transaction<MasterdataDatabase>, values: Values) => {
    if (!entity.parent || !parent) return;
    const code = values[entity.parent.column];
    if (typeof code !== 'string') return;
    if (!(await parent.lockLive(trx, code))) {
      const title = entity.parent.entity.title;
      throw new AppError('UNPROCESSABLE_REFERENCE', `${title} ${code} does not exist`, {
        fields: [{ field: `body.${entity.parent.column}`, message: `is not a live ${title.toLowerCase()}`, value: code }],
      });
    }
  };

  const checkNoChildren = async (trx: Transaction<MasterdataDatabase>, code: string) => {
    for (const child of children) {
      const codes = await child.liveCodesWhere(trx, child.entity.parent!.column, code, 5);
      if (codes.length > 0) {
        throw new AppError('CONFLICT', `${entity.title} ${code} still has live ${child.entity.table.replace(/_/g, ' ')} (${codes.join(', ')}); delete them first`, {
          fields: [{ field: 'params.code', message: `is referenced by ${child.entity.title.toLowerCase()} ${codes.join(', ')}`, value: code }],
        });
      }
    }
  };

  const notFound = (code: string) => new AppError('NOT_FOUND', `${entity.title} ${code} does not exist`);

  return {
    entity,
    async create(values: Values & { code: string }, change: Change): Promise<ReferenceDto> {
      return db.transaction().execute(async (trx) => {
        await checkParent(trx, values);
        const row = await own.insert(trx, values, change.userId);
        if (!row) {
          throw new AppError('CONFLICT', `${entity.title} ${values.code} already exists`, {
            fields: [{ field: 'body.code', message: `is taken by another ${entity.title.toLowerCase()}`, value: values.code }],
          });
        }
        return record(trx, 'created', row, change);
      });
    },
    async update(code: string, changes: Values, change: Change): Promise<ReferenceDto> {
      return db.transaction().execute(async (trx) => {
        await checkParent(trx, changes);
        const row = await own.update(trx, code, changes, change.userId);
        if (!row) throw notFound(code);
        return record(trx, 'updated', row, change);
      });
    },
    async remove(code: string, change: Change): Promise<void> {
      await db.transaction().execute(async (trx) => {
        // The row is locked first: a child being created waits on it, then finds no live parent.
        const row = await own.softDelete(trx, code, change.userId);
        if (!row) throw notFound(code);
        await checkNoChildren(trx, code);
        await record(trx, 'deleted', row, change);
      });
    },
  };
}

export type ReferenceService = ReturnType<typeof referenceService>;
