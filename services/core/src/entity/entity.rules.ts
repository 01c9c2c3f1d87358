import type { Transaction } from 'kysely';
import { AppError } from '@archipelago/platform';
import type { Change } from '@archipelago/platform/auth';
import type { CrudHooks, CrudRepository, CrudTable, CrudWrite } from '@archipelago/platform/crud';
import type { ReferenceValidator } from '@archipelago/platform/references';
import { addresses, engagements, entries, intakes, resources } from '../catalog.ts';
import type { CoreDatabase } from '../database.ts';
import type { LookupReader } from '../lookup.reader.ts';

type Values = Readonly<Record<string, unknown>>;
type Trx = Transaction<CoreDatabase>;

export interface RuleDeps {
  readonly references: ReferenceValidator;
  readonly lookups: LookupReader;
  readonly repositoryOf: (table: CrudTable) => CrudRepository;
}

// A column of the nested path is a path parameter in problems, any other a body field.
const fieldOf = (table: CrudTable, column: string) => (column === table.scope ? `params.${column}` : `body.${column}`);

// Codes and ids owned by other services, checked through the reference validator.
const otherServices = (deps: RuleDeps, table: CrudTable, refs: readonly (readonly [column: string, ref: string])[]) => (values: Values) =>
  deps.references.check(refs.map(([column, ref]) => ({ field: fieldOf(table, column), value: values[column] as string | null | undefined, ref })));

// A referenced code that must lie within another of the row (a district within the row's region), per core's lookup copy.
const within = (deps: RuleDeps, table: CrudTable, column: string, lookup: string, outer: string) => async (changes: Values, row: Values) => {
  if (!(column in changes || outer in changes)) return;
  const code = row[column];
  if (typeof code !== 'string') return;
  const actual = await deps.lookups.valueOf(lookup, code, outer);
  if (actual !== undefined && actual !== row[outer]) {
    const message = `lies in ${outer} ${actual}, not ${String(row[outer])}`;
    throw new AppError('UNPROCESSABLE_REFERENCE', `${column} ${code} ${message}`, { fields: [{ field: fieldOf(table, column), message, value: code }] });
  }
};

// A parent row of this service named in the changes must be live; FOR SHARE keeps it so until the write commits.
// `sameAs`: the parent must hold this row's value in that column (an intake's engagement is of the same resource).
const liveParent = (deps: RuleDeps, table: CrudTable, column: string, parent: CrudTable, sameAs?: string) => async (trx: Trx, changes: Values, row: Values) => {
  const id = changes[column];
  if (typeof id !== 'string') return;
  const found = (await deps.repositoryOf(parent).lock(trx, id, 'share')) as Values | undefined;
  const problem = (message: string) =>
    new AppError('UNPROCESSABLE_REFERENCE', `${parent.title} ${id} ${message}`, { fields: [{ field: fieldOf(table, column), message, value: id }] });
  if (!found && column === table.scope) throw new AppError('NOT_FOUND', `${parent.title} ${id} does not exist`);
  if (!found) throw problem('does not exist');
  if (sameAs && found[sameAs] !== row[sameAs]) throw problem(`belongs to another ${sameAs.replace(/_id$/, '')}`);
};

// Live children of a row being deleted: they go with it (cascade) or the delete is a 409 naming them.
const children = (deps: RuleDeps, table: CrudTable, links: readonly { readonly table: CrudTable; readonly column: string; readonly cascade?: boolean }[]) =>
  async (trx: Trx, current: Values, change: Change) => {
    const id = String(current.id);
    for (const child of links) {
      const rows = deps.repositoryOf(child.table);
      if (child.cascade) {
        await rows.removeWhere(trx, child.column, id, change.userId);
        continue;
      }
      const ids = await rows.liveKeysWhere(trx, child.column, id, 5);
      if (ids.length > 0) {
        const what = child.table.table.replace(/_/g, ' ');
        throw new AppError('CONFLICT', `${table.title} ${id} still has live ${what} (${ids.join(', ')}); delete them first`, {
          fields: [{ field: 'params.id', message: `is referenced by live ${what}`, value: id }],
        });
      }
    }
  };

// References to other services are checked before the transaction, like a district within its region on create
// (an update checks it on the locked row, where the region may come from the row).
const hooksOf = (options: {
  readonly references?: (values: Values) => Promise<void>;
  readonly within?: (changes: Values, row: Values) => Promise<void>;
  readonly parents?: readonly ((trx: Trx, changes: Values, row: Values) => Promise<void>)[];
  readonly beforeDelete?: (trx: Trx, current: Values, change: Change) => Promise<void>;
}): CrudHooks<CoreDatabase> => ({
  async validate(write: CrudWrite) {
    await options.references?.(write.changes);
    if (write.action === 'create') await options.within?.(write.changes, write.row);
  },
  async beforeWrite(trx, write) {
    if (write.action === 'update') await options.within?.(write.changes, write.row);
    for (const parent of options.parents ?? []) await parent(trx, write.changes, write.row);
  },
  ...(options.beforeDelete ? { beforeDelete: options.beforeDelete } : {}),
});

/** The rules of each core table that the CRUD mechanics do not know, in code. */
export function coreRules(deps: RuleDeps): ReadonlyMap<CrudTable, CrudHooks<CoreDatabase>> {
  return new Map<CrudTable, CrudHooks<CoreDatabase>>([
    [
      resources,
      hooksOf({
        references: otherServices(deps, resources, [['label_code', 'label']]),
        beforeDelete: children(deps, resources, [
          { table: addresses, column: 'resource_id', cascade: true },
          { table: engagements, column: 'resource_id' },
          { table: intakes, column: 'resource_id' },
          { table: entries, column: 'resource_id' },
        ]),
      }),
    ],
    [
      addresses,
      hooksOf({
        references: otherServices(deps, addresses, [['region_code', 'region'], ['district_code', 'district']]),
        within: within(deps, addresses, 'district_code', 'districts_lookup', 'region_code'),
        parents: [liveParent(deps, addresses, 'resource_id', resources)],
      }),
    ],
    [
      engagements,
      hooksOf({
        references: otherServices(deps, engagements, [['department_code', 'department']]),
        parents: [liveParent(deps, engagements, 'resource_id', resources)],
        beforeDelete: children(deps, engagements, [
          { table: intakes, column: 'engagement_id' },
          { table: entries, column: 'engagement_id' },
        ]),
      }),
    ],
    [
      intakes,
      hooksOf({
        references: otherServices(deps, intakes, [['department_code', 'department']]),
        parents: [liveParent(deps, intakes, 'resource_id', resources), liveParent(deps, intakes, 'engagement_id', engagements, 'resource_id')],
      }),
    ],
    [
      entries,
      hooksOf({
        references: otherServices(deps, entries, [['classification_code', 'classification-code']]),
        parents: [liveParent(deps, entries, 'resource_id', resources), liveParent(deps, entries, 'engagement_id', engagements, 'resource_id')],
      }),
    ],
  ]);
}
