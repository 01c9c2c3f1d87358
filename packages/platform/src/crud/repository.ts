import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { TSchema } from 'typebox';
import type { CrudRow, CrudTable } from './table.ts';

type Values = Readonly<Record<string, unknown>>;
// The repository runs on any service's database: its SQL names the table's own columns only.
type AnyDb = Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type AnyTrx = Transaction<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface CrudPage<T> {
  readonly items: CrudRow<T>[];
  readonly total: number;
}

const formatOf = (schema: TSchema, format: string): boolean => {
  const { format: own, anyOf } = schema as { format?: string; anyOf?: TSchema[] };
  return own === format || (anyOf ?? []).some((member) => formatOf(member, format));
};

/**
 * The only code that reads or writes one declared table. A `date` column is read as text (pg
 * would make it a Date at local midnight) and a `date-time` one as ISO text, as the API shows them.
 */
export function crudRepository<T extends CrudTable, DB>(db: Kysely<DB>, table: T) {
  const on = db as unknown as AnyDb;
  const name = sql.table(table.table);
  const key = sql.ref(table.key);
  const timestamps = Object.entries(table.columns).filter(([, schema]) => formatOf(schema, 'date-time')).map(([column]) => column);
  const columns = sql.join([
    sql`id`,
    ...Object.entries(table.columns).map(([column, schema]) => (formatOf(schema, 'date') ? sql`${sql.ref(column)}::text AS ${sql.ref(column)}` : sql.ref(column))),
    sql`version, created_at, updated_at`,
  ]);
  const live = table.deletion === 'soft' ? sql`deleted_at IS NULL` : sql`true`;
  const asRow = (raw: Record<string, unknown>): CrudRow<T> => {
    for (const column of timestamps) if (raw[column] instanceof Date) raw[column] = raw[column].toISOString();
    return raw as CrudRow<T>;
  };
  const rows = async (query: RawBuilder<Record<string, unknown>>, runner: AnyDb | AnyTrx = on) => (await query.execute(runner)).rows.map(asRow);
  const equal = (where: Values) =>
    Object.entries(where)
      .filter(([, value]) => value !== undefined)
      .map(([column, value]) => sql`${sql.ref(column)} = ${value}`);
  // Text keys are paged in byte order, the same in every database whatever its collation.
  const exportOrder = table.key === 'id' ? key : sql`${key} COLLATE "C"`;
  const softDelete = (userId: string | null) => sql`SET deleted_at = now(), updated_by = ${userId}, version = version + 1, updated_at = now()`;

  return {
    table,
    async list(options: { readonly limit: number; readonly offset: number; readonly where: Values }): Promise<CrudPage<T>> {
      const where = sql.join([live, ...equal(options.where)], sql` AND `);
      const order = sql.join([...table.orderBy.map((o) => sql`${sql.ref(o.column)} ${sql.raw(o.direction)}`), key]);
      const [items, count] = await Promise.all([
        rows(sql`SELECT ${columns} FROM ${name} WHERE ${where} ORDER BY ${order} LIMIT ${options.limit} OFFSET ${options.offset}`),
        sql<{ total: number }>`SELECT count(*)::int AS total FROM ${name} WHERE ${where}`.execute(on),
      ]);
      return { items, total: count.rows[0]?.total ?? 0 };
    },
    async find(value: string): Promise<CrudRow<T> | undefined> {
      return (await rows(sql`SELECT ${columns} FROM ${name} WHERE ${key} = ${value} AND ${live}`))[0];
    },
    /** Live rows among these keys. */
    async findAmong(values: readonly string[]): Promise<CrudRow<T>[]> {
      if (values.length === 0) return [];
      return rows(sql`SELECT ${columns} FROM ${name} WHERE ${key}::text = ANY(${[...values]}::text[]) AND ${live} ORDER BY ${key}`);
    },
    /** Live rows after `after` in key order, for reconciliation of copies kept elsewhere. */
    async exportAfter(after: string | undefined, limit: number): Promise<CrudRow<T>[]> {
      const from = after === undefined ? sql`true` : sql`${exportOrder} > ${after}`;
      return rows(sql`SELECT ${columns} FROM ${name} WHERE ${from} AND ${live} ORDER BY ${exportOrder} LIMIT ${limit}`);
    },
    /** Reads a live row and locks it until the transaction ends: FOR SHARE keeps it from being deleted, FOR UPDATE from any change. */
    async lock<TDB>(trx: Transaction<TDB>, value: string, mode: 'share' | 'update'): Promise<CrudRow<T> | undefined> {
      const lock = mode === 'share' ? sql`FOR SHARE` : sql`FOR UPDATE`;
      return (await rows(sql`SELECT ${columns} FROM ${name} WHERE ${key} = ${value} AND ${live} ${lock}`, trx))[0];
    },
    /** Up to `limit` keys of live rows whose `column` holds `value` (children of a parent row). */
    async liveKeysWhere<TDB>(trx: Transaction<TDB>, column: string, value: string, limit: number): Promise<string[]> {
      const found = await sql<{ key: string }>`SELECT ${key} AS key FROM ${name} WHERE ${sql.ref(column)} = ${value} AND ${live} ORDER BY ${key} LIMIT ${limit}`.execute(trx);
      return found.rows.map((row) => row.key);
    },
    /** Inserts a row (or revives a deleted one, as the table says); undefined when its unique column clashes with a live row's. */
    async insert<TDB>(trx: Transaction<TDB>, values: Values, userId: string | null): Promise<CrudRow<T> | undefined> {
      const given = Object.entries({ ...values, created_by: userId, updated_by: userId }).filter(([, value]) => value !== undefined);
      const unique = table.unique === undefined ? undefined : sql.ref(table.unique);
      let conflict = unique ? sql`ON CONFLICT (${unique}) DO NOTHING` : sql``;
      if (unique && table.revive && table.deletion === 'soft') {
        const revived = [...Object.keys(table.columns).filter((column) => column !== table.unique), 'created_by', 'updated_by'].map(
          (column) => sql`${sql.ref(column)} = excluded.${sql.ref(column)}`,
        );
        conflict = sql`ON CONFLICT (${unique}) DO UPDATE SET ${sql.join(revived)}, version = ${name}.version + 1, updated_at = now(), deleted_at = NULL
          WHERE ${name}.deleted_at IS NOT NULL`;
      }
      const inserted = await rows(
        sql`INSERT INTO ${name} (${sql.join(given.map(([column]) => sql.ref(column)))}) VALUES (${sql.join(given.map(([, value]) => value))}) ${conflict} RETURNING ${columns}`,
        trx,
      );
      return inserted[0];
    },
    /** Applies changes and bumps the version; undefined when no live row has this key. */
    async update<TDB>(trx: Transaction<TDB>, value: string, changes: Values, userId: string | null): Promise<CrudRow<T> | undefined> {
      const set = sql.join([...equal({ ...changes, updated_by: userId }), sql`version = version + 1`, sql`updated_at = now()`]);
      return (await rows(sql`UPDATE ${name} SET ${set} WHERE ${key} = ${value} AND ${live} RETURNING ${columns}`, trx))[0];
    },
    /** Deletes a live row (soft, bumping its version, or for real, as the table says); the row as it was last. */
    async remove<TDB>(trx: Transaction<TDB>, value: string, userId: string | null): Promise<CrudRow<T> | undefined> {
      const query =
        table.deletion === 'soft'
          ? sql<Record<string, unknown>>`UPDATE ${name} ${softDelete(userId)} WHERE ${key} = ${value} AND ${live} RETURNING ${columns}`
          : sql<Record<string, unknown>>`DELETE FROM ${name} WHERE ${key} = ${value} RETURNING ${columns}`;
      return (await rows(query, trx))[0];
    },
    /** Deletes every live row whose `column` holds `value` (a cascade); how many. */
    async removeWhere<TDB>(trx: Transaction<TDB>, column: string, value: string, userId: string | null): Promise<number> {
      const query =
        table.deletion === 'soft'
          ? sql`UPDATE ${name} ${softDelete(userId)} WHERE ${sql.ref(column)} = ${value} AND ${live}`
          : sql`DELETE FROM ${name} WHERE ${sql.ref(column)} = ${value}`;
      return Number((await query.execute(trx)).numAffectedRows ?? 0);
    },
  };
}

export type CrudRepository<T extends CrudTable = CrudTable> = ReturnType<typeof crudRepository<T, unknown>>;
