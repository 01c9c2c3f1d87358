import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Kysely } from 'kysely';
import type pg from 'pg';
import { envPrefix, type Service } from '@archipelago/registry';
import { createDatabase, waitForDatabase } from './db.ts';
import { startEmbeddedPostgres, type EmbeddedCluster, type EmbeddedOptions } from './embedded.ts';
import { serviceLayout } from './layout.ts';
import { updateLocalSecrets } from './local-secrets.ts';
import { alignLookupTables } from './lookups/align.ts';
import { createMigrator } from './migrate.ts';
import { applyProvisioningPlan, provisioningPlan, serviceRoles } from './provision.ts';
import { detachColumnLists } from './replication.ts';

const REPLICATOR_PASSWORD_VARIABLE = 'REPORTING_REPLICATOR_PASSWORD';
const READER_PASSWORD_VARIABLE = 'REPORTING_READER_PASSWORD';

/** Where one service's database is, and how its two roles reach it. */
export interface ServiceDatabase {
  readonly service: Service;
  /** The running service's URL (app role, DML only). */
  readonly appUrl: string;
  /** The migration URL (owner role). */
  readonly ownerUrl: string;
  readonly source: 'embedded' | 'external';
  /**
   * A superuser connection to this database, for reporting's publications and subscriptions: the
   * embedded cluster's, or `<KEY>_ADMIN_DATABASE_URL` for an external one (absent: not replicated).
   */
  readonly admin?: pg.ClientConfig;
}

export interface OpenedDatabases {
  /** In the order of `services` (dependencies first). */
  readonly byService: ReadonlyMap<string, ServiceDatabase>;
  /** The embedded cluster, when any service uses it. */
  readonly cluster: EmbeddedCluster | undefined;
  /** The reporting replicator's password (`REPORTING_REPLICATOR_PASSWORD`, else kept with the embedded roles'). */
  readonly replicatorPassword: string | undefined;
  /** reporting_reader's password (`REPORTING_READER_PASSWORD`, else kept with the embedded roles'). */
  readonly readerPassword: string | undefined;
  close(): Promise<void>;
}

export interface OpenDatabasesOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Embedded cluster settings; its superuser secret and role passwords live in `dataDir`. */
  readonly embedded: EmbeddedOptions;
  /** Tries per external database before giving up (default 8, about 16 s). */
  readonly connectAttempts?: number;
  readonly onRetry?: (service: string, attempt: number, delayMs: number, error: unknown) => void;
}

/**
 * Finds every service's database: `<KEY>_DATABASE_URL` (and optionally `<KEY>_OWNER_DATABASE_URL`)
 * for an external one, otherwise the embedded cluster, started and provisioned on demand.
 * External databases are waited for with backoff and fail with a clear error.
 */
export async function openDatabases(services: readonly Service[], options: OpenDatabasesOptions): Promise<OpenedDatabases> {
  const stateful = services.filter((s) => s.stateful);
  const external = stateful.filter((s) => options.env[`${envPrefix(s.key)}_DATABASE_URL`]);
  const embedded = stateful.filter((s) => !options.env[`${envPrefix(s.key)}_DATABASE_URL`]);
  const byService = new Map<string, ServiceDatabase>();

  for (const service of external) {
    const prefix = envPrefix(service.key);
    const appUrl = options.env[`${prefix}_DATABASE_URL`]!;
    const ownerUrl = options.env[`${prefix}_OWNER_DATABASE_URL`] || appUrl;
    const adminUrl = options.env[`${prefix}_ADMIN_DATABASE_URL`];
    byService.set(service.key, { service, appUrl, ownerUrl, source: 'external', ...(adminUrl ? { admin: { connectionString: adminUrl } } : {}) });
  }
  await Promise.all(
    external.map((service) =>
      waitForDatabase(byService.get(service.key)!.ownerUrl, {
        attempts: options.connectAttempts,
        hint: `Check that this PostgreSQL is running and that ${envPrefix(service.key)}_DATABASE_URL is right, or unset it to use the embedded PostgreSQL.`,
        onRetry: (attempt, delay, error) => options.onRetry?.(service.key, attempt, delay, error),
      }),
    ),
  );

  let cluster: EmbeddedCluster | undefined;
  let replicatorPassword = options.env.REPORTING_REPLICATOR_PASSWORD;
  let readerPassword = options.env.REPORTING_READER_PASSWORD;
  if (embedded.length > 0) {
    cluster = await startEmbeddedPostgres(options.embedded);
    try {
      const passwords = await rolePasswords(options.embedded.dataDir, embedded);
      replicatorPassword ??= passwords[REPLICATOR_PASSWORD_VARIABLE];
      readerPassword ??= passwords[READER_PASSWORD_VARIABLE];
      await applyProvisioningPlan(provisioningPlan(embedded), (db) => cluster!.connection(db), passwords);
      for (const service of embedded) {
        const roles = serviceRoles(service);
        byService.set(service.key, {
          service,
          appUrl: cluster.url(roles.app, passwords[roles.appPasswordVariable]!, service.database),
          ownerUrl: cluster.url(roles.owner, passwords[roles.ownerPasswordVariable]!, service.database),
          source: 'embedded',
          admin: cluster.connection(service.database),
        });
      }
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }
  // Dependency order (the registry's), whichever of them are external.
  const ordered = new Map(stateful.map((s) => [s.key, byService.get(s.key)!]));
  return {
    byService: ordered,
    cluster,
    replicatorPassword,
    readerPassword,
    async close() {
      await cluster?.stop();
    },
  };
}

// Role passwords of the embedded cluster: random on first use, kept in a file only the owner can read.
async function rolePasswords(dataDir: string, services: readonly Service[]): Promise<Record<string, string>> {
  return updateLocalSecrets(dataDir, "the embedded roles' passwords", (stored) => {
    let changed = false;
    const variables = [REPLICATOR_PASSWORD_VARIABLE, READER_PASSWORD_VARIABLE, ...services.flatMap((s) => [serviceRoles(s).ownerPasswordVariable, serviceRoles(s).appPasswordVariable])];
    for (const variable of variables) {
      if (stored[variable]) continue;
      stored[variable] = randomBytes(18).toString('base64url');
      changed = true;
    }
    return changed;
  });
}

/** Runs `work` with a Kysely connected as the service's owner role. */
export async function withOwnerDatabase<T>(database: ServiceDatabase, work: (db: Kysely<unknown>) => Promise<T>): Promise<T> {
  const db = createDatabase<unknown>(database.ownerUrl, { max: 1, applicationName: `${database.service.key}-migrations` });
  try {
    return await work(db);
  } finally {
    await db.destroy();
  }
}

/**
 * Applies a service's pending migrations, then makes its lookup tables follow their registry
 * declaration (`alignLookupTables`); returns the migrations' names. When some are pending, tables
 * published to reporting with a column list leave the publication first (a column list would make
 * dropping one of its columns fail); the next reporting sync puts them back.
 */
export async function migrateService(database: ServiceDatabase, root?: string): Promise<string[]> {
  return withOwnerDatabase(database, async (db) => {
    const migrator = createMigrator(db, {
      service: database.service.key,
      schema: database.service.database,
      folder: serviceLayout(database.service.key, root).migrations,
    });
    if ((await migrator.status()).some((m) => m.executedAt === undefined)) await detachColumnLists(database.ownerUrl);
    const applied = await migrator.migrateToLatest();
    await alignLookupTables(db, database.service);
    return applied;
  });
}

/** Runs a service's seed (`src/seed.ts`), which must be safe to run on every start. */
export async function seedService(database: ServiceDatabase, root?: string): Promise<void> {
  const module = (await import(pathToFileURL(serviceLayout(database.service.key, root).seed).href)) as {
    seed?: (db: Kysely<unknown>) => Promise<void>;
  };
  if (typeof module.seed !== 'function') throw new Error(`services/${database.service.key}/src/seed.ts must export seed(db)`);
  await withOwnerDatabase(database, module.seed);
}
