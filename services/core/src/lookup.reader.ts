import { sql, type Kysely } from 'kysely';
import type { CoreDatabase } from './database.ts';

/** Reads core's lookup tables (copies of masterdata, kept by the platform); never writes them. */
export function lookupReader(db: Kysely<CoreDatabase>) {
  return {
    /** One (text) column of the lookup row with this code; undefined when there is no such row. */
    async valueOf(table: string, code: string, column: string): Promise<string | null | undefined> {
      const { rows } = await sql<{ value: string | null }>`SELECT ${sql.ref(column)} AS value FROM ${sql.table(table)} WHERE code = ${code}`.execute(db);
      return rows[0]?.value;
    },
  };
}

export type LookupReader = ReturnType<typeof lookupReader>;
