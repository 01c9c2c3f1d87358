import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '@archipelago/registry';
import { createDatabase } from '../src/db.ts';
import { serviceLayout } from '../src/layout.ts';
import { createMigrator, MigrationError } from '../src/migrate.ts';
import { useTestDatabase } from '../src/testing/index.ts';

// Every service with a database, from the registry: a new one is tested without editing this file.
const SERVICES = loadRegistry(undefined, {}).services.filter((s) => s.stateful).map((s) => s.key);
const schemaOf = (key: string) => loadRegistry(undefined, {}).service(key).database;

async function tables(db: Kysely<unknown>, schema: string): Promise<string[]> {
  const { rows } = await sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema} ORDER BY table_name`.execute(db);
  return rows.map((r) => r.table_name);
}

describe.each(SERVICES)('%s migrations', (service) => {
  it('go up, down to nothing, and up again', async () => {
    const database = await useTestDatabase(service);
    const owner = createDatabase<unknown>(database.ownerUrl, { max: 1 });
    try {
      const migrator = createMigrator(owner, { service, schema: schemaOf(service), folder: serviceLayout(service).migrations });
      const applied = await tables(owner, schemaOf(service));
      expect(applied.filter((t) => !t.startsWith('schema_migrations')).length).toBeGreaterThan(0);
      expect((await migrator.status()).every((m) => m.executedAt)).toBe(true);

      const undone = await migrator.rollback('all');
      expect(undone.length).toBeGreaterThan(0);
      expect(await tables(owner, schemaOf(service))).toEqual(['schema_migrations', 'schema_migrations_lock']);
      expect((await migrator.status()).every((m) => !m.executedAt)).toBe(true);

      expect(await migrator.migrateToLatest()).toEqual(undone.slice().reverse());
      expect(await tables(owner, schemaOf(service))).toEqual(applied);
    } finally {
      await owner.destroy();
    }
  });
});

describe('the migrator', () => {
  const folders: string[] = [];
  afterAll(async () => Promise.all(folders.map((f) => rm(f, { recursive: true, force: true }))));

  async function folderWith(files: Record<string, string>): Promise<string> {
    const folder = await mkdtemp(path.join(tmpdir(), 'archipelago-migrations-'));
    folders.push(folder);
    for (const [name, content] of Object.entries(files)) await writeFile(path.join(folder, name), content);
    return folder;
  }

  const createTable = (name: string, type = 'integer') =>
    "import { sql } from 'kysely';\n" +
    `export async function up(db) { await sql\`CREATE TABLE ${name} (id ${type})\`.execute(db); }\n` +
    `export async function down(db) { await sql\`DROP TABLE ${name}\`.execute(db); }\n`;

  it('stops at a failing file, names it with the SQL error, and leaves nothing half-applied', async () => {
    const database = await useTestDatabase('core');
    const owner = createDatabase<unknown>(database.ownerUrl, { max: 1 });
    try {
      const folder = await folderWith({
        '20990101000000_good.ts': createTable('good_table'),
        '20990101000001_bad.ts': createTable('bad_table', 'no_such_type'),
      });
      // Bookkeeping in its own schema so these files do not mix with core's real migrations.
      const migrator = createMigrator(owner, { service: 'core', schema: 'scratch_failing', folder });
      const error = await migrator.migrateToLatest().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(MigrationError);
      expect((error as Error).message).toMatch(/Migration 20990101000001_bad\.ts of service "core" failed: 42704: type "no_such_type" does not exist/);
      expect((error as Error).message).toContain('rolled back');
      expect(await tables(owner, 'core')).not.toContain('good_table');
      expect((await migrator.status()).map((m) => [m.name, m.executedAt])).toEqual([
        ['20990101000000_good', undefined],
        ['20990101000001_bad', undefined],
      ]);
    } finally {
      await owner.destroy();
    }
  });

  it('rejects a file without down() or with a bad name, naming it', async () => {
    const database = await useTestDatabase('core');
    const owner = createDatabase<unknown>(database.ownerUrl, { max: 1 });
    try {
      const noDown = await folderWith({ '20990101000000_only_up.ts': 'export async function up() {}\n' });
      await expect(createMigrator(owner, { service: 'core', schema: 'scratch_no_down', folder: noDown }).migrateToLatest()).rejects.toThrow(
        /20990101000000_only_up\.ts.*must export both `up\(db\)` and `down\(db\)`/,
      );
      const badName = await folderWith({ 'create_things.ts': createTable('things') });
      await expect(createMigrator(owner, { service: 'core', schema: 'scratch_bad_name', folder: badName }).migrateToLatest()).rejects.toThrow(
        /create_things\.ts.*14-digit timestamp/,
      );
    } finally {
      await owner.destroy();
    }
  });

  it('lets only one of two concurrent runs apply each migration', async () => {
    const database = await useTestDatabase('core');
    const first = createDatabase<unknown>(database.ownerUrl, { max: 1 });
    const second = createDatabase<unknown>(database.ownerUrl, { max: 1 });
    try {
      const folder = await folderWith({
        // Slow enough that the two runs overlap.
        '20990101000000_slow.ts':
          "import { sql } from 'kysely';\n" +
          "export async function up(db) { await sql`select pg_sleep(0.5)`.execute(db); await db.schema.createTable('slow_table').addColumn('id', 'integer').execute(); }\n" +
          "export async function down(db) { await db.schema.dropTable('slow_table').execute(); }\n",
      });
      const options = { service: 'core', schema: 'scratch_concurrent', folder };
      const [a, b] = await Promise.all([createMigrator(first, options).migrateToLatest(), createMigrator(second, options).migrateToLatest()]);
      expect([...a, ...b]).toEqual(['20990101000000_slow']);
      expect(await tables(first, 'core')).toContain('slow_table');
    } finally {
      await first.destroy();
      await second.destroy();
    }
  });
});
