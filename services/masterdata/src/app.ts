import { checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import type { Kysely } from 'kysely';
import { protectApiRoutes, type Auth } from '@archipelago/platform/auth';
import { pruneOutboxJob, registerEventFeed } from '@archipelago/platform/events';
import { pruneIdempotencyKeysJob } from '@archipelago/platform/idempotency';
import { registerJobRoutes, startJobs } from '@archipelago/platform/jobs';
import { loadRegistry } from '@archipelago/registry';
import { crudExport, crudRepository, crudRoutes, crudService, type CrudRepository, type CrudTable } from '@archipelago/platform/crud';
import { parents, referenceTables } from './catalog.ts';
import type { MasterdataDatabase } from './database.ts';
import { referenceHooks } from './reference/reference.hooks.ts';
import { validateRoute } from './reference/reference.routes.ts';

export interface MasterdataDeps extends AppDeps<MasterdataDatabase> {
  /** Verifies tokens and permissions (`labels:read`, `labels:write`, …) against IAM. */
  readonly auth: Auth;
}

/** Composition root of the masterdata service. */
export async function buildApp({ db, logger, databaseUrl, env, auth, credentials }: MasterdataDeps): Promise<HttpServer> {
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
  await registerEventFeed(app, { source: 'masterdata', schema: 'masterdata', db, listenUrl: databaseUrl });
  const jobs = await startJobs({
    service: 'masterdata', db, declared: loadRegistry().service('masterdata').jobs ?? [], env, logger: logger || undefined,
    handlers: { 'outbox.prune': pruneOutboxJob(db), 'idempotency.prune': pruneIdempotencyKeysJob(db as Kysely<unknown>) },
  });
  registerJobRoutes(app, jobs);
  app.addHook('onClose', () => jobs.stop());
  return app;
}
