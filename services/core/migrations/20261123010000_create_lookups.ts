import type { Kysely } from 'kysely';
import { createConsumerTablesV1, dropConsumerTablesV1 } from '@archipelago/platform/events';
import { createLookupBookkeepingV1, createLookupTableV1, dropLookupBookkeepingV1, dropLookupTableV1, type LookupTableSpec } from '@archipelago/platform/lookups';

// Read-only copies of masterdata (docs/architecture.md#lookup-tables), kept in sync by the platform from
// masterdata's events; the registry declares which columns are copied.
const lookups: readonly LookupTableSpec[] = [
  {
    table: 'labels_lookup',
    key: ['code', 'varchar(10)'],
    columns: { label: 'varchar(50) NOT NULL', display_name: 'varchar(50) NOT NULL', abbreviation: 'varchar(50)', display_order: 'integer NOT NULL DEFAULT 0', is_active: 'boolean NOT NULL DEFAULT true' },
    comment: 'Read model replicated from masterdata.labels for reporting tools',
  },
  { table: 'regions_lookup', key: ['code', 'varchar(20)'], columns: { name: 'varchar(100) NOT NULL', zone: 'varchar(20) NOT NULL', is_active: 'boolean NOT NULL DEFAULT true' } },
  { table: 'districts_lookup', key: ['code', 'varchar(20)'], columns: { name: 'varchar(100) NOT NULL', region_code: 'varchar(20) NOT NULL', is_active: 'boolean NOT NULL DEFAULT true' } },
  { table: 'departments_lookup', key: ['code', 'varchar(20)'], columns: { name: 'varchar(100) NOT NULL', is_active: 'boolean NOT NULL DEFAULT true' } },
  {
    table: 'classification_codes_lookup',
    key: ['code', 'varchar(20)'],
    columns: { description: 'text NOT NULL', category: 'varchar(100) NOT NULL', is_active: 'boolean NOT NULL DEFAULT true' },
  },
];

export async function up(db: Kysely<unknown>): Promise<void> {
  await createConsumerTablesV1(db);
  await createLookupBookkeepingV1(db);
  for (const lookup of lookups) await createLookupTableV1(db, lookup);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const lookup of [...lookups].reverse()) await dropLookupTableV1(db, lookup.table);
  await dropLookupBookkeepingV1(db);
  await dropConsumerTablesV1(db);
}
