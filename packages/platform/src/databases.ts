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
  /** The embedded cluster, when any service uses it (the first one, with several). */
  readonly cluster: EmbeddedCluster | undefined;
  /** The reporting replicator's password (`REPORTING_REPLICATOR_PASSWORD`, else kept with the embedded roles'). */
  readonly replicatorPassword: string | undefined;
  /** reporting_reader's password (`REPORTING_READER_PASSWORD`, else kept with the embedded roles'). */
  readonly readerPassword: string | undefined;
  /** Every embedded cluster this opened, with the services whose databases it holds. */
  readonly clusters: readonly EmbeddedDatabases[];
  close(): Promise<void>;
}

/** One embedded cluster and the services it holds. */
export interface EmbeddedDatabases {
  readonly cluster: EmbeddedCluster;
  readonly dataDir: string;
  readonly services: readonly string[];
}

export interface OpenDatabasesOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Embedded cluster settings; its superuser secret and role passwords live in `dataDir`. A
   * function gives each service its settings: services with the same `dataDir` share a cluster,
   * so one per service gives each database a PostgreSQL of its own (the distributed topology).
   */
  readonly embedded: EmbeddedOptions | ((service: Service) => EmbeddedOptions);
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

  const clusters: EmbeddedDatabases[] = [];
  const close = () => Promise.all(clusters.map((c) => c.cluster.stop()));
  // Reporting's two roles exist in every cluster with one password each (reporting subscribes
  // to every source with the replicator's): the environment's, else the first cluster's.
  const shared: Record<string, string> = {};
  if (options.env.REPORTING_REPLICATOR_PASSWORD) shared[REPLICATOR_PASSWORD_VARIABLE] = options.env.REPORTING_REPLICATOR_PASSWORD;
  if (options.env.REPORTING_READER_PASSWORD) shared[READER_PASSWORD_VARIABLE] = options.env.REPORTING_READER_PASSWORD;
  // Clusters start side by side; each is provisioned with its own services' plan only, so
  // nothing of another service exists there.
  const openCluster = async ([settings, members]: [EmbeddedOptions, Service[]]) => {
    const cluster = await startEmbeddedPostgres(settings);
    clusters.push({ cluster, dataDir: settings.dataDir, services: members.map((s) => s.key) });
    const passwords = await rolePasswords(settings.dataDir, members, shared);
    shared[REPLICATOR_PASSWORD_VARIABLE] ??= passwords[REPLICATOR_PASSWORD_VARIABLE]!;
    shared[READER_PASSWORD_VARIABLE] ??= passwords[READER_PASSWORD_VARIABLE]!;
    await applyProvisioningPlan(provisioningPlan(members), (db) => cluster.connection(db), passwords);
    for (const service of members) {
      const roles = serviceRoles(service);
      byService.set(service.key, {
        service,
        appUrl: cluster.url(roles.app, passwords[roles.appPasswordVariable]!, service.database),
        ownerUrl: cluster.url(roles.owner, passwords[roles.ownerPasswordVariable]!, service.database),
        source: 'embedded',
        admin: cluster.connection(service.database),
      });
    }
  };
  // The first alone: run as root, its initdb creates the `postgres` system user the others need.
  const [first, ...others] = clusterGroups(embedded, options.embedded);
  const started: PromiseSettledResult<void>[] = first ? await Promise.allSettled([openCluster(first)]) : [];
  if (!started.some((result) => result.status === 'rejected')) started.push(...(await Promise.allSettled(others.map(openCluster))));
  const failure = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure) {
    await close();
    throw failure.reason;
  }
  clusters.sort((a, b) => stateful.findIndex((s) => s.key === a.services[0]) - stateful.findIndex((s) => s.key === b.services[0]));
  // Dependency order (the registry's), whichever of them are external.
  const ordered = new Map(stateful.map((s) => [s.key, byService.get(s.key)!]));
  return {
    byService: ordered,
    cluster: clusters[0]?.cluster,
    clusters,
    replicatorPassword: shared[REPLICATOR_PASSWORD_VARIABLE],
    readerPassword: shared[READER_PASSWORD_VARIABLE],
    async close() {
      await close();
    },
  };
}

// The embedded services grouped by cluster (by data directory), in the registry's order.
function clusterGroups(services: readonly Service[], embedded: OpenDatabasesOptions['embedded']): [EmbeddedOptions, Service[]][] {
  const groups = new Map<string, [EmbeddedOptions, Service[]]>();
  for (const service of services) {
    const settings = typeof embedded === 'function' ? embedded(service) : embedded;
    const group = groups.get(settings.dataDir) ?? groups.set(settings.dataDir, [settings, []]).get(settings.dataDir)!;
    group[1].push(service);
  }
  return [...groups.values()];
}

// Role passwords of the embedded cluster: random on first use, kept in a file only the owner can read.
async function rolePasswords(dataDir: string, services: readonly Service[], shared: Readonly<Record<string, string>> = {}): Promise<Record<string, string>> {
  return updateLocalSecrets(dataDir, "the embedded roles' passwords", (stored) => {
    let changed = false;
    for (const [variable, value] of Object.entries(shared)) {
      if (stored[variable] === value) continue;
      stored[variable] = value;
      changed = true;
    }
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
