import type { Kysely } from 'kysely';
import type { MasterdataDatabase } from '../database.ts';
import type { Label } from './label.table.ts';

export interface LabelPage {
  readonly items: Label[];
  readonly total: number;
}

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
  };
}

export type LabelRepository = ReturnType<typeof labelRepository>;
