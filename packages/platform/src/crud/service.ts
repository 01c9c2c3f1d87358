import type { Kysely, Transaction } from 'kysely';
import { AppError } from '../errors.ts';
import { appendEvents } from '../events/outbox.ts';
import { markIdempotentWrite } from '../idempotency/context.ts';
import type { Change } from '../auth/change.ts';
import type { CrudRepository } from './repository.ts';
import { crudDto, type CrudDto, type CrudRow, type CrudTable } from './table.ts';

type Values = Readonly<Record<string, unknown>>;

/** Checks a change against the locked row (`current`) and the changed columns; throws to refuse it. */
export type CrudGuard = (current: Values, changes: Values) => Promise<void>;

/** One write as a hook sees it: the changed columns and the row as it will be. */
export interface CrudWrite {
  readonly action: 'create' | 'update';
  readonly changes: Values;
  /** The row after the write: the current row (locked) with the changes over it. */
  readonly row: Values;
}

/**
 * The rules of one table that the mechanics do not know: written in the service, in code.
 * Each throws an `AppError` to refuse the write, and the transaction rolls back.
 */
export interface CrudHooks<DB> {
  /** Before the transaction: checks that need no lock (codes and ids owned by other services). */
  readonly validate?: (write: CrudWrite) => Promise<void>;
  /** In the write's transaction, after the row is locked: parents that must be live (and locked so), rules across columns. */
  readonly beforeWrite?: (trx: Transaction<DB>, write: CrudWrite) => Promise<void>;
  /** In the delete's transaction, on the locked row: children that refuse it (409) or go with it. */
  readonly beforeDelete?: (trx: Transaction<DB>, current: Values, change: Change) => Promise<void>;
}

/** Where a write comes from: the scope column's value from the path, and a guard run on the locked row. */
export interface CrudWriteOptions {
  readonly scoped?: Values;
  readonly guard?: CrudGuard;
}

/**
 * The generic writes of one table: every change locks its row, bumps its version and commits with
 * its event (`appendEvents`, which also marks the request's Idempotency-Key committed); tables
 * without events mark the key themselves. What differs per table comes in as `hooks`.
 */
export function crudService<T extends CrudTable, DB>(db: Kysely<DB>, rows: CrudRepository<T>, hooks: CrudHooks<DB> = {}) {
  const { table } = rows;
  const notFound = (key: string) => new AppError('NOT_FOUND', `${table.title} ${key} does not exist`);
  const outOfScope = (current: Values, scoped: Values | undefined) => table.scope !== undefined && current[table.scope] !== scoped?.[table.scope];

  const record = async (trx: Transaction<DB>, action: 'created' | 'updated' | 'deleted', row: CrudRow<T>, change: Change): Promise<CrudDto<T>> => {
    const dto = crudDto(table, row);
    if (!table.events) {
      await markIdempotentWrite(trx);
      return dto;
    }
    const aggregateId = String((row as unknown as Values)[table.key]);
    await appendEvents(trx, [{ type: `${table.name}.${action}`, aggregateType: table.name, aggregateId, aggregateVersion: row.version, payload: dto, metadata: change.metadata }]);
    return dto;
  };

  return {
    table,
    rows,
    async create(values: Values, change: Change): Promise<CrudDto<T>> {
      const write: CrudWrite = { action: 'create', changes: values, row: values };
      await hooks.validate?.(write);
      return db.transaction().execute(async (trx) => {
        await hooks.beforeWrite?.(trx, write);
        const row = await rows.insert(trx, values, change.userId);
        if (!row) {
          const column = table.unique ?? table.key;
          throw new AppError('CONFLICT', `${table.title} ${String(values[column])} already exists`, {
            fields: [{ field: `body.${column}`, message: `is taken by another ${table.title.toLowerCase()}`, value: values[column] }],
          });
        }
        return record(trx, 'created', row, change);
      });
    },
    async update(key: string, changes: Values, change: Change, options: CrudWriteOptions = {}): Promise<CrudDto<T>> {
      await hooks.validate?.({ action: 'update', changes, row: changes });
      return db.transaction().execute(async (trx) => {
        const current = (await rows.lock(trx, key, 'update')) as Values | undefined;
        if (!current || outOfScope(current, options.scoped)) throw notFound(key);
        await options.guard?.(current, changes);
        await hooks.beforeWrite?.(trx, { action: 'update', changes, row: { ...current, ...changes } });
        const row = await rows.update(trx, key, changes, change.userId);
        if (!row) throw notFound(key);
        return record(trx, 'updated', row, change);
      });
    },
    async remove(key: string, change: Change, options: CrudWriteOptions = {}): Promise<void> {
      await db.transaction().execute(async (trx) => {
        // The row is locked first: a child being created waits on it, then finds no live parent.
        const current = (await rows.lock(trx, key, 'update')) as Values | undefined;
        if (!current || outOfScope(current, options.scoped)) throw notFound(key);
        await options.guard?.(current, {});
        await hooks.beforeDelete?.(trx, current, change);
        const row = await rows.remove(trx, key, change.userId);
        if (!row) throw notFound(key);
        await record(trx, 'deleted', row, change);
      });
    },
  };
}

export type CrudService<T extends CrudTable = CrudTable> = ReturnType<typeof crudService<T, unknown>>;
