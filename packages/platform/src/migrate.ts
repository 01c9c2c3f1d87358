import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Migrator, NO_MIGRATIONS, type Kysely, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';
import { describePgError } from './db.ts';

/** A migration file must look like `20261123120000_create_labels.ts` (or its compiled `.mjs`). */
export const MIGRATION_FILE = /^\d{14}_[a-z0-9_]+\.(ts|mjs)$/;

/** Thrown when a migration fails or a migration file is malformed; names the file. */
export class MigrationError extends Error {
  constructor(
    readonly service: string,
    readonly migration: string | undefined,
    cause: unknown,
  ) {
    super(
      migration
        ? `Migration ${migration} of service "${service}" failed: ${describePgError(cause)}. ` +
            'The whole run was rolled back, so the database is as it was before; fix the file and run the migration again.'
        : `Migrations of service "${service}" could not run: ${describePgError(cause)}`,
      { cause },
    );
    this.name = 'MigrationError';
  }
}

// Loads timestamped TS migrations from a service's folder; each must export `up` and `down`.
class FolderMigrationProvider implements MigrationProvider {
  constructor(
    private readonly service: string,
    private readonly folder: string,
  ) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(this.folder)).filter((f) => /\.(ts|mjs)$/.test(f)).sort();
    const migrations: Record<string, Migration> = {};
    for (const file of files) {
      if (!MIGRATION_FILE.test(file)) {
        throw new MigrationError(this.service, file, new Error('the file name must be a 14-digit timestamp, "_", and a snake_case name, e.g. 20261123120000_create_labels.ts'));
      }
      const module = (await import(pathToFileURL(path.join(this.folder, file)).href)) as Partial<Migration>;
      if (typeof module.up !== 'function' || typeof module.down !== 'function') {
        throw new MigrationError(this.service, file, new Error('a migration must export both `up(db)` and `down(db)`'));
      }
      migrations[file.replace(/\.(ts|mjs)$/, '')] = { up: module.up, down: module.down };
    }
    return migrations;
  }
}

export interface MigrationStatus {
  readonly name: string;
  readonly executedAt: Date | undefined;
}

/** Runs one service's migrations against its database; runs are serialised by an advisory lock. */
export interface ServiceMigrator {
  migrateToLatest(): Promise<string[]>;
  /** Rolls back the last `steps` migrations (default 1), or all with `'all'`. */
  rollback(steps?: number | 'all'): Promise<string[]>;
  status(): Promise<MigrationStatus[]>;
}

/**
 * Creates a migrator for a service. Every run happens in one transaction: a failing file
 * leaves nothing half-applied.
 *
 * @example
 * const migrator = createMigrator(ownerDb, { service: 'core', folder: 'services/core/migrations' });
 * await migrator.migrateToLatest();
 */
export function createMigrator(db: Kysely<unknown>, options: { service: string; schema: string; folder: string }): ServiceMigrator {
  const migrator = new Migrator({
    db,
    provider: new FolderMigrationProvider(options.service, options.folder),
    migrationTableSchema: options.schema,
    migrationTableName: 'schema_migrations',
    migrationLockTableName: 'schema_migrations_lock',
  });
  const settle = (result: MigrationResultSet): string[] => {
    if (result.error) {
      if (result.error instanceof MigrationError) throw result.error;
      const failed = result.results?.find((r) => r.status === 'Error')?.migrationName;
      throw new MigrationError(options.service, failed ? `${failed}.ts` : undefined, result.error);
    }
    return (result.results ?? []).map((r) => r.migrationName);
  };
  return {
    async migrateToLatest() {
      return settle(await migrator.migrateToLatest());
    },
    async rollback(steps = 1) {
      if (steps === 'all') return settle(await migrator.migrateTo(NO_MIGRATIONS));
      const applied: string[] = [];
      for (let i = 0; i < steps; i++) {
        const done = settle(await migrator.migrateDown());
        if (done.length === 0) break;
        applied.push(...done);
      }
      return applied;
    },
    async status() {
      const all = await migrator.getMigrations();
      return all.map((m) => ({ name: m.name, executedAt: m.executedAt }));
    },
  };
}
