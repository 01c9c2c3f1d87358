import { sql, type Insertable, type Kysely, type Transaction, type Updateable } from 'kysely';
import type { MasterdataDatabase } from '../database.ts';
import type { Label, LabelTable } from './label.table.ts';

export interface LabelPage {
  readonly items: Label[];
  readonly total: number;
}

export type NewLabel = Omit<Insertable<LabelTable>, 'id' | 'version' | 'created_at' | 'updated_at' | 'deleted_at'>;
export type LabelChanges = Omit<Updateable<LabelTable>, 'id' | 'code' | 'version' | 'created_at' | 'updated_at' | 'deleted_at' | 'created_by'>;

/** The only code that reads or writes the labels table. */
export function labelRepository(db: Kysely<MasterdataDatabase>) {
  return {
    async list(options: { limit: number; offset: number; activeOnly: boolean }): Promise<LabelPage> {
      let query = db.selectFrom('labels').where('deleted_at', 'is', null);
      if (options.activeOnly) query = query.where('is_active', '=', true);
      const [items, count] = await Promise.all([
        query.selectAll().orderBy('display_order').orderBy('code').limit(options.limit).offset(options.offset).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow(),
      ]);
      return { items, total: count.total };
    },
    async findByCode(code: string): Promise<Label | undefined> {
      return db.selectFrom('labels').selectAll().where('code', '=', code).where('deleted_at', 'is', null).executeTakeFirst();
    },
    /** Inserts a label, or revives a soft-deleted one with the same code (its version keeps counting). */
    async insert(trx: Transaction<MasterdataDatabase>, label: NewLabel): Promise<Label | undefined> {
      return trx
        .insertInto('labels')
        .values(label)
        .onConflict((oc) =>
          oc.column('code').doUpdateSet({
            label: (eb) => eb.ref('excluded.label'),
            display_name: (eb) => eb.ref('excluded.display_name'),
            abbreviation: (eb) => eb.ref('excluded.abbreviation'),
            display_order: (eb) => eb.ref('excluded.display_order'),
            is_active: (eb) => eb.ref('excluded.is_active'),
            created_by: (eb) => eb.ref('excluded.created_by'),
            updated_by: (eb) => eb.ref('excluded.created_by'),
            version: sql<number>`labels.version + 1`,
            updated_at: sql<Date>`now()`,
            deleted_at: null,
          }).where('labels.deleted_at', 'is not', null),
        )
        .returningAll()
        .executeTakeFirst(); // undefined: a live label has this code
    },
    /** Applies changes and bumps the version; undefined when no live label has this code. */
    async update(trx: Transaction<MasterdataDatabase>, code: string, changes: LabelChanges): Promise<Label | undefined> {
      return trx
        .updateTable('labels')
        .set({ ...changes, version: sql<number>`version + 1`, updated_at: sql<Date>`now()` })
        .where('code', '=', code)
        .where('deleted_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
    },
    async softDelete(trx: Transaction<MasterdataDatabase>, code: string, userId: string | null): Promise<Label | undefined> {
      return trx
        .updateTable('labels')
        .set({ deleted_at: sql<Date>`now()`, updated_by: userId, version: sql<number>`version + 1`, updated_at: sql<Date>`now()` })
        .where('code', '=', code)
        .where('deleted_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
    },
  };
}

export type LabelRepository = ReturnType<typeof labelRepository>;
