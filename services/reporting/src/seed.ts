import type { Kysely } from 'kysely';
import { loadRegistry } from '@archipelago/registry';
import type { ReportingDatabase } from './database.ts';

// One row per service that publishes tables to reporting, taken from the registry.
export async function seed(db: Kysely<unknown>): Promise<void> {
  const rows = loadRegistry()
    .services.filter((s) => (s.reporting?.publishes.length ?? 0) > 0)
    .map((s) => ({ service: s.key, database: s.database, publication: 'reporting', tables: (s.reporting?.publishes ?? []).map((t) => (typeof t === 'string' ? t : t.table)) }));
  if (rows.length === 0) return;
  await (db as Kysely<ReportingDatabase>)
    .insertInto('sources')
    .values(rows)
    .onConflict((oc) => oc.column('service').doUpdateSet((eb) => ({
      database: eb.ref('excluded.database'),
      publication: eb.ref('excluded.publication'),
      tables: eb.ref('excluded.tables'),
      updated_at: new Date(),
    })))
    .execute();
}
