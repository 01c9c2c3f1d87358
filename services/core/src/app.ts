import { checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import { permissionOf, protectApiRoutes, type Auth } from '@archipelago/platform/auth';
import { pruneOutboxJob, registerEventFeed } from '@archipelago/platform/events';
import { pruneIdempotencyKeysJob } from '@archipelago/platform/idempotency';
import type { ServiceCredentials } from '@archipelago/platform/internal-auth';
import { registerJobRoutes, startJobs } from '@archipelago/platform/jobs';
import { reconcileLookupsJob } from '@archipelago/platform/lookups';
import { loadRegistry } from '@archipelago/registry';
import type { Kysely } from 'kysely';
import { crudRepository, crudRoutes, crudService, type CrudRepository, type CrudTable } from '@archipelago/platform/crud';
import { departmentCrudAccess } from './access/department.ts';
import { coreEntities, resources } from './catalog.ts';
import type { CoreDatabase } from './database.ts';
import { coreRules } from './entity/entity.rules.ts';
import { startIntegration, type CorePeers } from './integration.ts';
import { lookupReader } from './lookup.reader.ts';
import { orderRepository } from './orders/order.repository.ts';
import { orderRoutes } from './orders/order.routes.ts';
import { orderService } from './orders/order.service.ts';
import { reportQueries } from './reports/report.queries.ts';
import { reportRoutes } from './reports/report.routes.ts';

export interface CoreDeps extends AppDeps<CoreDatabase> {
  readonly peers: CorePeers;
  /** Verifies tokens, permissions (`orders:read`, …) and policies against IAM. */
  readonly auth: Auth;
  /** Core's own credentials: its internal routes check them, its calls to peers carry them. */
  readonly credentials: ServiceCredentials;
}

/** Composition root of the core service. */
export async function buildApp({ db, logger, peers, auth, databaseUrl, env, credentials }: CoreDeps): Promise<HttpServer> {
  const app = await createHttpServer({ service: 'core', logger, readiness: () => checkDatabase(db), credentials, idempotency: { db: db as Kysely<unknown> } });
  protectApiRoutes(app, auth);
  const { references, lookups: lookupSync } = await startIntegration(app, { db: db as Kysely<unknown>, peers, auth, logger, credentials });
  const repositories = new Map<CrudTable, CrudRepository>(coreEntities.map((table) => [table, crudRepository(db, table) as CrudRepository]));
  const repositoryOf = (table: CrudTable) => repositories.get(table)!;
  const rules = coreRules({ references, lookups: lookupReader(db), repositoryOf });
  for (const [table, rows] of repositories) {
    // A table with a `department_code` column is under department policies on every route.
    const access = 'department_code' in table.columns ? departmentCrudAccess(auth, (permissionOf('GET', table.path) ?? table.table).replace(/:read$/, '')) : {};
    crudRoutes(app, crudService(db, rows, rules.get(table)), access);
  }
  const orders = orderRepository(db);
  orderRoutes(app, auth, orders, orderService(db, references, orders, repositoryOf(resources)));
  reportRoutes(app, reportQueries(db));
  await registerEventFeed(app, { source: 'core', schema: 'core', db, listenUrl: databaseUrl });
  // LOOKUP_RECONCILE_AT (cron, HH:MM or off) overrides the reconciliation's schedule.
  const jobs = await startJobs({
    service: 'core', db, declared: loadRegistry().service('core').jobs ?? [], env, logger: logger || undefined,
    handlers: { 'outbox.prune': pruneOutboxJob(db), 'idempotency.prune': pruneIdempotencyKeysJob(db as Kysely<unknown>), 'lookups.reconcile': reconcileLookupsJob(lookupSync) },
  });
  registerJobRoutes(app, jobs);
  app.addHook('onClose', () => jobs.stop());
  return app;
}
