import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { MasterdataDatabase } from '../database.ts';
import type { ReferenceEntity, ReferenceRow } from './reference.entity.ts';

export interface ReferencePage {
  readonly items: ReferenceRow[];
  readonly total: number;
}

export interface ReferenceListOptions {
  readonly limit: number;
  readonly offset: number;
  /** true: active rows only; false: inactive only; undefined: both. */
  readonly active?: boolean;
  /** Column → value equality filters, for columns the entity declares filterable. */
  readonly where: Readonly<Record<string, unknown>>;
}

type Db = Kysely<MasterdataDatabase> | Transaction<MasterdataDatabase>;

/** The only code that reads or writes one reference entity's table. */
export function referenceRepository(db: Kysely<MasterdataDatabase>, entity: ReferenceEntity) {
  const table = sql.table(entity.table);
  const business = [...Object.keys(entity.columns), 'is_active'];
  const rows = async (query: RawBuilder<ReferenceRow>, on: Db = db) => (await query.execute(on)).rows;
  const live = sql`deleted_at IS NULL`;
  const assignments = (values: Readonly<Record<string, unknown>>) =>
    Object.entries(values).map(([column, value]) => sql`${sql.ref(column)} = ${value}`);

  return {
    entity,
    async list(options: ReferenceListOptions): Promise<ReferencePage> {
      const conditions = [live];
      if (options.active !== undefined) conditions.push(sql`is_active = ${options.active}`);
      for (const column of entity.filters) {
        if (options.where[column] !== undefined) conditions.push(sql`${sql.ref(column)} = ${options.where[column]}`);
      }
      const where = sql.join(conditions, sql` AND `);
      const order = sql.join([...entity.orderBy, 'code'].map((column) => sql.ref(column)));
      const [items, count] = await Promise.all([
        rows(sql<ReferenceRow>`SELECT * FROM ${table} WHERE ${where} ORDER BY ${order} LIMIT ${options.limit} OFFSET ${options.offset}`),
        sql<{ total: number }>`SELECT count(*)::int AS total FROM ${table} WHERE ${where}`.execute(db),
      ]);
      return { items, total: count.rows[0]?.total ?? 0 };
    },
    async findByCode(code: string): Promise<ReferenceRow | undefined> {
      return (await rows(sql<ReferenceRow>`SELECT * FROM ${table} WHERE code = ${code} AND ${live}`))[0];
    },
    /** Live (not deleted) rows among these codes, with whether each is active. */
    async liveAmong(codes: readonly string[]): Promise<{ code: string; is_active: boolean }[]> {
      if (codes.length === 0) return [];
      const found = await sql<{ code: string; is_active: boolean }>`SELECT code, is_active FROM ${table} WHERE code = ANY(${[...codes]}::text[]) AND ${live} ORDER BY code`.execute(db);
      return found.rows;
    },
    /** Rows with a code after `after` in byte order (inactive ones too, not deleted ones), for reconciliation. */
    async exportAfter(after: string | undefined, limit: number): Promise<ReferenceRow[]> {
      const from = after === undefined ? sql`true` : sql`code COLLATE "C" > ${after}`;
      return rows(sql<ReferenceRow>`SELECT * FROM ${table} WHERE ${from} AND ${live} ORDER BY code COLLATE "C" LIMIT ${limit}`);
    },
    /** Locks a live row against deletion until the transaction ends; false when there is none. */
    async lockLive(trx: Transaction<MasterdataDatabase>, code: string): Promise<boolean> {
      return (await sql`SELECT 1 FROM ${table} WHERE code = ${code} AND ${live} FOR SHARE`.execute(trx)).rows.length > 0;
    },
    /** Up to `limit` codes of live rows whose `column` holds `value` (children of a parent row). */
    async liveCodesWhere(trx: Transaction<MasterdataDatabase>, column: string, value: string, limit: number): Promise<string[]> {
      const found = await sql<{ code: string }>`SELECT code FROM ${table} WHERE ${sql.ref(column)} = ${value} AND ${live} ORDER BY code LIMIT ${limit}`.execute(trx);
      return found.rows.map((row) => row.code);
    },
    /** Inserts a row, or revives a soft-deleted one with the same code (its version keeps counting). */
    async insert(trx: Transaction<MasterdataDatabase>, values: Readonly<Record<string, unknown>>, userId: string | null): Promise<ReferenceRow | undefined> {
      const given = { ...values, created_by: userId, updated_by: userId };
      const revived = [...business, 'created_by', 'updated_by'].map((column) => sql`${sql.ref(column)} = excluded.${sql.ref(column)}`);
      const inserted = await rows(
        sql<ReferenceRow>`
          INSERT INTO ${table} (${sql.join(Object.keys(given).map((column) => sql.ref(column)))})
          VALUES (${sql.join(Object.values(given))})
          ON CONFLICT (code) DO UPDATE SET ${sql.join(revived)},
            version = ${table}.version + 1, updated_at = now(), deleted_at = NULL
            WHERE ${table}.deleted_at IS NOT NULL
          RETURNING *`,
        trx,
      );
      return inserted[0]; // undefined: a live row has this code
    },
    /** Applies changes and bumps the version; undefined when no live row has this code. */
    async update(trx: Transaction<MasterdataDatabase>, code: string, changes: Readonly<Record<string, unknown>>, userId: string | null): Promise<ReferenceRow | undefined> {
      const set = sql.join([...assignments({ ...changes, updated_by: userId }), sql`version = version + 1`, sql`updated_at = now()`]);
      return (await rows(sql<ReferenceRow>`UPDATE ${table} SET ${set} WHERE code = ${code} AND ${live} RETURNING *`, trx))[0];
    },
    async softDelete(trx: Transaction<MasterdataDatabase>, code: string, userId: string | null): Promise<ReferenceRow | undefined> {
      return (
        await rows(
          sql<ReferenceRow>`UPDATE ${table} SET deleted_at = now(), updated_by = ${userId}, version = version + 1, updated_at = now() WHERE code = ${code} AND ${live} RETURNING *`,
          trx,
        )
      )[0];
    },
  };
}

export type ReferenceRepository = ReturnType<typeof referenceRepository>;
