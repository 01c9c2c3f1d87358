import { checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import type { Kysely } from 'kysely';
import { protectApiRoutes, type Auth } from '@archipelago/platform/auth';
import { composeService } from '@archipelago/platform/compose';
import { crudExport, crudRepository, crudRoutes, crudService, type CrudRepository, type CrudTable } from '@archipelago/platform/crud';
import { parents, referenceTables } from './catalog.ts';
import type { MasterdataDatabase } from './database.ts';
import { referenceHooks } from './reference/reference.hooks.ts';
import { validateRoute } from './reference/reference.routes.ts';

export interface MasterdataDeps extends AppDeps<MasterdataDatabase> {
  /** Verifies tokens and permissions (`labels:read`, `labels:write`, …) against IAM. */
  readonly auth: Auth;
  /** Its peers' URLs (`dependsOn`): IAM, whose changes it follows. */
  readonly peer: (key: string) => string;
}

/** Composition root of the masterdata service. */
export async function buildApp(deps: MasterdataDeps): Promise<HttpServer> {
  const { db, logger, auth, credentials } = deps;
  const app = await createHttpServer({ service: 'masterdata', logger, readiness: () => checkDatabase(db), credentials, idempotency: { db: db as Kysely<unknown> } });
  protectApiRoutes(app, auth);
  const repositories = new Map<CrudTable, CrudRepository>(referenceTables.map((table) => [table, crudRepository(db, table) as CrudRepository]));
  const repositoryOf = (table: CrudTable) => repositories.get(table)!;
  for (const [table, rows] of repositories) {
    const service = crudService(db, rows, referenceHooks(table, parents, repositoryOf));
    crudRoutes(app, service);
    crudExport(app, 'masterdata', service);
    validateRoute(app, rows);
  }
  // Its events, the identity provider's changes and its jobs: from the registry.
  await composeService(app, { service: 'masterdata', deps, auth });
  return app;
}
