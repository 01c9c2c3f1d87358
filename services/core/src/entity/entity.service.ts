import type { Kysely, Transaction } from 'kysely';
import { AppError } from '@archipelago/platform';
import { appendEvents } from '@archipelago/platform/events';
import { markIdempotentWrite } from '@archipelago/platform/idempotency';
import type { Change } from '@archipelago/platform/auth';
import type { CoreDatabase } from '../database.ts';
import type { ReferenceValidator } from '@archipelago/platform/references';
import { entityDto, scopeOf, type EntityDto, type EntityRow } from './entity.definition.ts';
import type { LookupReader } from '../lookup.reader.ts';
import type { EntityRepository } from './entity.repository.ts';

type Values = Readonly<Record<string, unknown>>;
/** Checks a change against the locked row (`current`) and the changed columns; throws to refuse it. */
export type Guard = (current: Values, changes: Values) => Promise<void>;

/**
 * The rules of one core entity: references to other services' codes and ids are checked, parent
 * rows of this service must be live (and stay so until the change commits), a row with live
 * children is not deleted unless they go with it, and every change commits with its event.
 * `all` holds the repositories of every entity, so parents and children can be found.
 */
export function entityService(db: Kysely<CoreDatabase>, references: ReferenceValidator, lookups: LookupReader, all: readonly EntityRepository[], own: EntityRepository) {
  const entity = own.entity;
  const scope = scopeOf(entity);
  const repositoryOf = (name: string) => all.find((repository) => repository.entity.name === name)!;
  const parents = entity.parents.map((parent) => ({ ...parent, repository: repositoryOf(parent.entity.name) }));
  const children = all.flatMap((repository) =>
    repository.entity.parents.filter((parent) => parent.entity.name === entity.name).map((parent) => ({ repository, column: parent.column })),
  );
  const fieldOf = (column: string) => (column === scope ? `params.${column}` : `body.${column}`);
  const notFound = (id: string) => new AppError('NOT_FOUND', `${entity.title} ${id} does not exist`);

  const checkReferences = (values: Values) =>
    references.check(entity.references.map(({ column, ref }) => ({ field: fieldOf(column), value: values[column] as string | null | undefined, ref })));

  // A referenced code that must lie within another (a district within the row's region).
  const checkWithin = async (changed: Values, row: Values) => {
    for (const { column, within } of entity.references) {
      if (!within || !(column in changed || within.column in changed)) continue;
      const code = row[column];
      if (typeof code !== 'string') continue;
      const actual = await lookups.valueOf(within.lookup, code, within.column);
      if (actual !== undefined && actual !== row[within.column]) {
        const message = `lies in ${within.column} ${actual}, not ${String(row[within.column])}`;
        throw new AppError('UNPROCESSABLE_REFERENCE', `${column} ${code} ${message}`, { fields: [{ field: fieldOf(column), message, value: code }] });
      }
    }
  };

  // Each parent named in `changed` must be live; FOR SHARE keeps it so until this transaction ends.
  const checkParents = async (trx: Transaction<CoreDatabase>, changed: Values, row: Values) => {
    for (const parent of parents) {
      const id = changed[parent.column];
      if (typeof id !== 'string') continue;
      const found = await parent.repository.lock(trx, id, 'share');
      const problem = (message: string) =>
        new AppError('UNPROCESSABLE_REFERENCE', `${parent.entity.title} ${id} ${message}`, { fields: [{ field: fieldOf(parent.column), message, value: id }] });
      if (!found && parent.column === scope) throw new AppError('NOT_FOUND', `${parent.entity.title} ${id} does not exist`);
      if (!found) throw problem('does not exist');
      if (parent.sameAs && found[parent.sameAs] !== row[parent.sameAs]) throw problem(`belongs to another ${parent.sameAs.replace(/_id$/, '')}`);
    }
  };

  const record = async (trx: Transaction<CoreDatabase>, action: 'created' | 'updated' | 'deleted', row: EntityRow, change: Change) => {
    const dto = entityDto(entity, row);
    if (!entity.events) await markIdempotentWrite(trx); // appendEvents marks it otherwise
    if (entity.events) {
      await appendEvents(trx, [{ type: `${entity.name}.${action}`, aggregateType: entity.name, aggregateId: row.id, aggregateVersion: row.version, payload: dto, metadata: change.metadata }]);
    }
    return dto;
  };

  return {
    entity,
    async create(values: Values, change: Change): Promise<EntityDto> {
      await checkReferences(values);
      await checkWithin(values, values);
      return db.transaction().execute(async (trx) => {
        await checkParents(trx, values, values);
        const row = await own.insert(trx, values, change.userId);
        if (!row) {
          const column = entity.unique!;
          throw new AppError('CONFLICT', `${entity.title} ${String(values[column])} already exists`, {
            fields: [{ field: `body.${column}`, message: `is taken by another ${entity.title.toLowerCase()}`, value: values[column] }],
          });
        }
        return record(trx, 'created', row, change);
      });
    },
    /**
     * `scoped`: the scope column's value from the path; a row of another parent is not found.
     * `allowed` runs on the locked row (department policies) and throws when the user may not change it.
     */
    async update(id: string, changes: Values, change: Change, scoped?: Values, allowed?: Guard): Promise<EntityDto> {
      await checkReferences(changes);
      return db.transaction().execute(async (trx) => {
        const current = await own.lock(trx, id, 'update');
        if (!current || (scope && current[scope] !== scoped?.[scope])) throw notFound(id);
        await allowed?.(current, changes);
        await checkWithin(changes, { ...current, ...changes });
        await checkParents(trx, changes, { ...current, ...changes });
        const row = await own.update(trx, id, changes, change.userId);
        if (!row) throw notFound(id);
        return record(trx, 'updated', row, change);
      });
    },
    async remove(id: string, change: Change, scoped?: Values, allowed?: Guard): Promise<void> {
      await db.transaction().execute(async (trx) => {
        // The row is locked first: a child being created waits on it, then finds no live parent.
        const current = await own.lock(trx, id, 'update');
        if (!current || (scope && current[scope] !== scoped?.[scope])) throw notFound(id);
        await allowed?.(current, {});
        for (const child of children) {
          if (child.repository.entity.onParentDelete === 'cascade') {
            await child.repository.removeWhere(trx, child.column, id, change.userId);
            continue;
          }
          const ids = await child.repository.liveIdsWhere(trx, child.column, id, 5);
          if (ids.length > 0) {
            const what = child.repository.entity.table.replace(/_/g, ' ');
            throw new AppError('CONFLICT', `${entity.title} ${id} still has live ${what} (${ids.join(', ')}); delete them first`, {
              fields: [{ field: 'params.id', message: `is referenced by live ${what}`, value: id }],
            });
          }
        }
        const row = await own.remove(trx, id, change.userId);
        if (!row) throw notFound(id);
        await record(trx, 'deleted', row, change);
      });
    },
  };
}

export type EntityService = ReturnType<typeof entityService>;
