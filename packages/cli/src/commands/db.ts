import type { Registry, Service } from '@archipelago/registry';
import { createMigrator } from '@archipelago/platform/migrate';
import { migrateService, seedService, withOwnerDatabase, type ServiceDatabase } from '@archipelago/platform/databases';
import { serviceLayout } from '@archipelago/platform/layout';
import { openLocalDatabases } from '../stack.ts';
import { provisionReporting } from './reporting.ts';

export type DbAction = 'migrate' | 'rollback' | 'status' | 'seed';

/** `archipelago db migrate|rollback|status|seed [--service key] [--seed] [--all]` */
export async function db(
  registry: Registry,
  action: DbAction,
  options: { keys: readonly string[]; seed: boolean; all: boolean },
  env: Readonly<Record<string, string | undefined>>,
  say: (line: string) => void,
): Promise<void> {
  const selected: Service[] = (options.keys.length > 0 ? options.keys.map((k) => registry.service(k)) : [...registry.services]).filter((s) => s.stateful);
  const databases = await openLocalDatabases(registry, selected, env, say);
  try {
    // Roll back in reverse dependency order; everything else goes forwards.
    const ordered = [...databases.byService.values()];
    if (action === 'rollback') ordered.reverse();
    for (const database of ordered) await run(action, database, options, say);
    // Migrations may have changed published tables: reporting follows (when it is among them).
    if (action === 'migrate') await provisionReporting(databases, env, say);
  } finally {
    await databases.close();
  }
}

async function run(action: DbAction, database: ServiceDatabase, options: { seed: boolean; all: boolean }, say: (line: string) => void): Promise<void> {
  const key = database.service.key;
  switch (action) {
    case 'migrate': {
      const applied = await migrateService(database);
      say(`${key}: ${applied.length > 0 ? `applied ${applied.join(', ')}` : 'already up to date'}`);
      if (options.seed) {
        await seedService(database);
        say(`${key}: seeded`);
      }
      return;
    }
    case 'seed':
      await seedService(database);
      say(`${key}: seeded`);
      return;
    case 'rollback':
    case 'status': {
      await withOwnerDatabase(database, async (db) => {
        const migrator = createMigrator(db, { service: key, schema: database.service.database, folder: serviceLayout(key).migrations });
        if (action === 'rollback') {
          const undone = await migrator.rollback(options.all ? 'all' : 1);
          say(`${key}: ${undone.length > 0 ? `rolled back ${undone.join(', ')}` : 'nothing to roll back'}`);
        } else {
          say(`${key} (${database.source}):`);
          for (const m of await migrator.status()) say(`  ${m.executedAt ? `applied ${m.executedAt.toISOString()}` : 'pending                       '}  ${m.name}`);
        }
      });
    }
  }
}
