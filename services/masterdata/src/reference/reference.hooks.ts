import { AppError } from '@archipelago/platform';
import type { CrudHooks, CrudRepository, CrudTable } from '@archipelago/platform/crud';
import type { MasterdataDatabase } from '../database.ts';

/** A code column of `table` that must name a live row of `parent`. */
export interface ParentLink {
  readonly table: CrudTable;
  readonly column: string;
  readonly parent: CrudTable;
}

/**
 * The rules of master data the CRUD mechanics do not know: a parent code must name a live parent
 * row, locked (FOR SHARE) until the write commits so it cannot be deleted meanwhile; a row with
 * live children cannot be deleted (409 naming them).
 */
export function referenceHooks(table: CrudTable, links: readonly ParentLink[], repositoryOf: (table: CrudTable) => CrudRepository): CrudHooks<MasterdataDatabase> {
  const parents = links.filter((link) => link.table === table);
  const children = links.filter((link) => link.parent === table);
  return {
    async beforeWrite(trx, { changes }) {
      for (const { column, parent } of parents) {
        const code = changes[column];
        if (typeof code !== 'string') continue;
        if (!(await repositoryOf(parent).lock(trx, code, 'share'))) {
          throw new AppError('UNPROCESSABLE_REFERENCE', `${parent.title} ${code} does not exist`, {
            fields: [{ field: `body.${column}`, message: `is not a live ${parent.title.toLowerCase()}`, value: code }],
          });
        }
      }
    },
    async beforeDelete(trx, current) {
      const code = String(current.code);
      for (const child of children) {
        const codes = await repositoryOf(child.table).liveKeysWhere(trx, child.column, code, 5);
        if (codes.length > 0) {
          throw new AppError('CONFLICT', `${table.title} ${code} still has live ${child.table.table.replace(/_/g, ' ')} (${codes.join(', ')}); delete them first`, {
            fields: [{ field: 'params.code', message: `is referenced by ${child.table.title.toLowerCase()} ${codes.join(', ')}`, value: code }],
          });
        }
      }
    },
  };
}
