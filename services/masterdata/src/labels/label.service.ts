import type { Kysely } from 'kysely';
import { AppError } from '@archipelago/platform';
import { appendEvents, type EventMetadata } from '@archipelago/platform/events';
import type { MasterdataDatabase } from '../database.ts';
import type { LabelChanges, LabelRepository, NewLabel } from './label.repository.ts';
import type { Label } from './label.table.ts';

/** What other services learn about a label; the same shape as the API's. */
export function labelDto(label: Label) {
  return {
    id: label.id,
    code: label.code,
    label: label.label,
    display_name: label.display_name,
    abbreviation: label.abbreviation,
    display_order: label.display_order,
    is_active: label.is_active,
    version: label.version,
  };
}

export type LabelDto = ReturnType<typeof labelDto>;

const event = (type: 'label.created' | 'label.updated' | 'label.deleted', label: Label, metadata: EventMetadata) => ({
  type,
  aggregateType: 'label',
  aggregateId: label.code,
  aggregateVersion: label.version,
  payload: labelDto(label),
  metadata,
});

/** The rules of labels: every change and its event commit together, or neither does. */
export function labelService(db: Kysely<MasterdataDatabase>, labels: LabelRepository) {
  return {
    async create(input: NewLabel, metadata: EventMetadata): Promise<LabelDto> {
      return db.transaction().execute(async (trx) => {
        const label = await labels.insert(trx, input);
        if (!label) {
          throw new AppError('CONFLICT', `Label ${input.code} already exists`, {
            fields: [{ field: 'body.code', message: 'is taken by another label', value: input.code }],
          });
        }
        await appendEvents(trx, [event('label.created', label, metadata)]);
        return labelDto(label);
      });
    },
    async update(code: string, changes: LabelChanges, metadata: EventMetadata): Promise<LabelDto> {
      return db.transaction().execute(async (trx) => {
        const label = await labels.update(trx, code, changes);
        if (!label) throw new AppError('NOT_FOUND', `Label ${code} does not exist`);
        await appendEvents(trx, [event('label.updated', label, metadata)]);
        return labelDto(label);
      });
    },
    async remove(code: string, metadata: EventMetadata): Promise<void> {
      await db.transaction().execute(async (trx) => {
        const label = await labels.softDelete(trx, code, metadata.userId ?? null);
        if (!label) throw new AppError('NOT_FOUND', `Label ${code} does not exist`);
        await appendEvents(trx, [event('label.deleted', label, metadata)]);
      });
    },
  };
}

export type LabelService = ReturnType<typeof labelService>;
