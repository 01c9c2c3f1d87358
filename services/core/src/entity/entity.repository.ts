import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { TSchema } from 'typebox';
import type { CoreDatabase } from '../database.ts';
import type { CoreEntity, EntityRow } from './entity.definition.ts';

export interface EntityPage {
  readonly items: EntityRow[];
  readonly total: number;
}

type Db = Kysely<CoreDatabase> | Transaction<CoreDatabase>;

// A `date` column is read as text: pg would turn it into a Date at local midnight.
const isDate = (schema: TSchema): boolean => {
  const { format, anyOf } = schema as { format?: string; anyOf?: TSchema[] };
  return format === 'date' || (anyOf ?? []).some(isDate);
};

/** The only code that reads or writes one core entity's table. */
export function entityRepository(db: Kysely<CoreDatabase>, entity: CoreEntity) {
  const table = sql.table(entity.table);
  const columns = sql.join([
    sql`id`,
    ...Object.entries(entity.columns).map(([column, schema]) => (isDate(schema) ? sql`${sql.ref(column)}::text AS ${sql.ref(column)}` : sql.ref(column))),
    sql`version, created_at, updated_at`,
  ]);
  const live = entity.deletion === 'soft' ? sql`deleted_at IS NULL` : sql`true`;
  const rows = async (query: RawBuilder<EntityRow>, on: Db = db) => (await query.execute(on)).rows;
  const equal = (where: Readonly<Record<string, unknown>>) =>
    Object.entries(where)
      .filter(([, value]) => value !== undefined)
      .map(([column, value]) => sql`${sql.ref(column)} = ${value}`);

  return {
    entity,
    async list(options: { limit: number; offset: number; where: Readonly<Record<string, unknown>> }): Promise<EntityPage> {
      const where = sql.join([live, ...equal(options.where)], sql` AND `);
      const order = sql.join([...entity.orderBy.map((o) => sql`${sql.ref(o.column)} ${sql.raw(o.direction)}`), sql`id`]);
      const [items, count] = await Promise.all([
        rows(sql<EntityRow>`SELECT ${columns} FROM ${table} WHERE ${where} ORDER BY ${order} LIMIT ${options.limit} OFFSET ${options.offset}`),
        sql<{ total: number }>`SELECT count(*)::int AS total FROM ${table} WHERE ${where}`.execute(db),
      ]);
      return { items, total: count.rows[0]?.total ?? 0 };
    },
    async findById(id: string): Promise<EntityRow | undefined> {
      return (await rows(sql<EntityRow>`SELECT ${columns} FROM ${table} WHERE id = ${id} AND ${live}`))[0];
    },
    /** Reads a live row and locks it until the transaction ends: FOR SHARE keeps it from being deleted, FOR UPDATE from any change. */
    async lock(trx: Transaction<CoreDatabase>, id: string, mode: 'share' | 'update'): Promise<EntityRow | undefined> {
      const lock = mode === 'share' ? sql`FOR SHARE` : sql`FOR UPDATE`;
      return (await rows(sql<EntityRow>`SELECT ${columns} FROM ${table} WHERE id = ${id} AND ${live} ${lock}`, trx))[0];
    },
    /** Up to `limit` ids of live rows whose `column` holds `value` (children of a parent row). */
    async liveIdsWhere(trx: Transaction<CoreDatabase>, column: string, value: string, limit: number): Promise<string[]> {
      const found = await sql<{ id: string }>`SELECT id FROM ${table} WHERE ${sql.ref(column)} = ${value} AND ${live} ORDER BY id LIMIT ${limit}`.execute(trx);
      return found.rows.map((row) => row.id);
    },
    /** Inserts a row; undefined when its unique column clashes with another row's. */
    async insert(trx: Transaction<CoreDatabase>, values: Readonly<Record<string, unknown>>, userId: string | null): Promise<EntityRow | undefined> {
      const given = Object.entries({ ...values, created_by: userId, updated_by: userId }).filter(([, value]) => value !== undefined);
      const conflict = entity.unique ? sql`ON CONFLICT (${sql.ref(entity.unique)}) DO NOTHING` : sql``;
      const inserted = await rows(
        sql<EntityRow>`
          INSERT INTO ${table} (${sql.join(given.map(([column]) => sql.ref(column)))})
          VALUES (${sql.join(given.map(([, value]) => value))})
          ${conflict}
          RETURNING ${columns}`,
        trx,
      );
      return inserted[0];
    },
    /** Applies changes and bumps the version; undefined when no live row has this id. */
    async update(trx: Transaction<CoreDatabase>, id: string, changes: Readonly<Record<string, unknown>>, userId: string | null): Promise<EntityRow | undefined> {
      const set = sql.join([...equal({ ...changes, updated_by: userId }), sql`version = version + 1`, sql`updated_at = now()`]);
      return (await rows(sql<EntityRow>`UPDATE ${table} SET ${set} WHERE id = ${id} AND ${live} RETURNING ${columns}`, trx))[0];
    },
    /** Deletes a live row (soft, bumping its version, or for real, as the entity says); the row as it was last. */
    async remove(trx: Transaction<CoreDatabase>, id: string, userId: string | null): Promise<EntityRow | undefined> {
      const query =
        entity.deletion === 'soft'
          ? sql<EntityRow>`UPDATE ${table} SET deleted_at = now(), updated_by = ${userId}, version = version + 1, updated_at = now() WHERE id = ${id} AND ${live} RETURNING ${columns}`
          : sql<EntityRow>`DELETE FROM ${table} WHERE id = ${id} RETURNING ${columns}`;
      return (await rows(query, trx))[0];
    },
    /** Deletes every live row whose `column` holds `value`; how many. */
    async removeWhere(trx: Transaction<CoreDatabase>, column: string, value: string, userId: string | null): Promise<number> {
      const query =
        entity.deletion === 'soft'
          ? sql`UPDATE ${table} SET deleted_at = now(), updated_by = ${userId}, version = version + 1, updated_at = now() WHERE ${sql.ref(column)} = ${value} AND ${live}`
          : sql`DELETE FROM ${table} WHERE ${sql.ref(column)} = ${value}`;
      return Number((await query.execute(trx)).numAffectedRows ?? 0);
    },
  };
}

export type EntityRepository = ReturnType<typeof entityRepository>;
