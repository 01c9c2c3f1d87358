import { checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import { permissionOf, protectApiRoutes, type Auth } from '@archipelago/platform/auth';
import { composeService } from '@archipelago/platform/compose';
import type { ServiceCredentials } from '@archipelago/platform/internal-auth';
import type { Kysely } from 'kysely';
import { crudRepository, crudRoutes, crudService, type CrudRepository, type CrudTable } from '@archipelago/platform/crud';
import { departmentCrudAccess } from './access/department.ts';
import { coreEntities, resources } from './catalog.ts';
import type { CoreDatabase } from './database.ts';
import { coreRules } from './entity/entity.rules.ts';
import { lookupReader } from './lookup.reader.ts';
import { orderRepository } from './orders/order.repository.ts';
import { orderRoutes } from './orders/order.routes.ts';
import { orderService } from './orders/order.service.ts';
import { reportQueries } from './reports/report.queries.ts';
import { reportRoutes } from './reports/report.routes.ts';

export interface CoreDeps extends AppDeps<CoreDatabase> {
  /** Its peers' URLs (`dependsOn`): masterdata, IAM. */
  readonly peer: (key: string) => string;
  /** Verifies tokens, permissions (`orders:read`, …) and policies against IAM. */
  readonly auth: Auth;
  /** Core's own credentials: its internal routes check them, its calls to peers carry them. */
  readonly credentials: ServiceCredentials;
}

/** Composition root of the core service. */
export async function buildApp(deps: CoreDeps): Promise<HttpServer> {
  const { db, logger, auth, credentials } = deps;
  const app = await createHttpServer({ service: 'core', logger, readiness: () => checkDatabase(db), credentials, idempotency: { db: db as Kysely<unknown> } });
  protectApiRoutes(app, auth);
  // Its events, lookups, references, the identity provider's changes and its jobs: from the registry.
  const { references } = await composeService(app, { service: 'core', deps, auth });
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
  return app;
}
