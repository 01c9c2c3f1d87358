import { sql, type Kysely, type Transaction } from 'kysely';
import type { LookupDefinition, Service } from '@archipelago/registry';
import { createConsumerTablesV1 } from '../events/consumer.ts';
import { createLookupBookkeepingV1, createLookupTableV1 } from './table.ts';

/** What aligning did to one lookup table. */
export interface LookupAlignment {
  readonly table: string;
  /** `created`: it did not exist; `recreated`: its shape differed from the declaration (refilled from the export at start). */
  readonly action: 'kept' | 'created' | 'recreated';
}

// PostgreSQL's name for each declarable type (format_type), and for the sync bookkeeping's columns.
const FORMATTED: Readonly<Record<string, string>> = { text: 'text', integer: 'integer', boolean: 'boolean', uuid: 'uuid' };
const BOOKKEEPING = { master_id: 'uuid', source_version: 'bigint', synced_at: 'timestamp with time zone' };

/** A lookup table's columns and their types, as its declaration implies them. */
export function declaredLookupColumns(lookup: LookupDefinition): Readonly<Record<string, string>> {
  const copied = Object.fromEntries(Object.entries(lookup.columns).map(([column, type]) => [column, FORMATTED[type] ?? type]));
  return { [lookup.key]: FORMATTED[lookup.keyType ?? 'text']!, ...copied, ...BOOKKEEPING };
}

async function presentColumns(db: Kysely<unknown> | Transaction<unknown>, table: string): Promise<Record<string, string>> {
  const { rows } = await sql<{ name: string; type: string }>`
    SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relname = ${table} AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped`.execute(db);
  return Object.fromEntries(rows.map((row) => [row.name, row.type]));
}

/** Whether a table's columns are exactly the declared ones, with the declared types. */
export async function lookupTableMatches(db: Kysely<unknown> | Transaction<unknown>, lookup: LookupDefinition): Promise<{ exists: boolean; matches: boolean }> {
  const present = await presentColumns(db, lookup.table);
  const wanted = declaredLookupColumns(lookup);
  const exists = Object.keys(present).length > 0;
  const matches = exists && Object.keys(present).length === Object.keys(wanted).length && Object.entries(wanted).every(([column, type]) => present[column] === type);
  return { exists, matches };
}

const exists = async (trx: Transaction<unknown>, table: string) =>
  (await sql<{ found: string | null }>`SELECT to_regclass(${table}) AS found`.execute(trx)).rows[0]?.found != null;

/**
 * Makes a service's lookup tables follow its registry declaration (docs/architecture.md#lookup-tables),
 * after its migrations, as its owner role: a declared table that is missing is created, one whose
 * columns or types differ is dropped and created again, empty (it is a copy: the platform refills
 * it from the master's export when the service starts, and the events after follow). The
 * bookkeeping the platform needs (tombstones, consumer cursors and dead letters) is created when absent.
 */
export async function alignLookupTables(db: Kysely<unknown>, service: Pick<Service, 'key' | 'lookups' | 'subscriptions'>): Promise<LookupAlignment[]> {
  const lookups = service.lookups ?? [];
  const groups = service.subscriptions.some((subscription) => subscription.mode === 'group');
  if (lookups.length === 0 && !groups) return [];
  return db.transaction().execute(async (trx) => {
    // Two migrators at once (two `npm start`s) align one after the other.
    await sql`SELECT pg_advisory_xact_lock(hashtext('archipelago.lookups'), hashtext(current_schema()))`.execute(trx);
    if (groups && !(await exists(trx, 'event_cursors'))) await createConsumerTablesV1(trx);
    if (lookups.length > 0 && !(await exists(trx, 'lookup_tombstones'))) await createLookupBookkeepingV1(trx);
    const done: LookupAlignment[] = [];
    for (const lookup of lookups) {
      const state = await lookupTableMatches(trx, lookup);
      if (state.matches) {
        done.push({ table: lookup.table, action: 'kept' });
        continue;
      }
      if (state.exists) await sql`DROP TABLE ${sql.id(lookup.table)}`.execute(trx);
      const types = declaredLookupColumns(lookup);
      await createLookupTableV1(trx, {
        table: lookup.table,
        key: [lookup.key, types[lookup.key]!],
        columns: Object.fromEntries(Object.keys(lookup.columns).map((column) => [column, types[column]!])),
        comment: `Read-only copy of ${lookup.entity} from ${lookup.from}, declared in the registry and kept in sync by the platform; never write it by hand`,
      });
      done.push({ table: lookup.table, action: state.exists ? 'recreated' : 'created' });
    }
    return done;
  });
}
