import { checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import type { Kysely } from 'kysely';
import { protectApiRoutes, type Auth } from '@archipelago/platform/auth';
import { pruneOutboxJob, registerEventFeed } from '@archipelago/platform/events';
import { pruneIdempotencyKeysJob } from '@archipelago/platform/idempotency';
import { registerJobRoutes, startJobs } from '@archipelago/platform/jobs';
import { loadRegistry } from '@archipelago/registry';
import { referenceEntities } from './catalog.ts';
import type { MasterdataDatabase } from './database.ts';
import { referenceRepository } from './reference/reference.repository.ts';
import { referenceRoutes } from './reference/reference.routes.ts';
import { referenceService } from './reference/reference.service.ts';

export interface MasterdataDeps extends AppDeps<MasterdataDatabase> {
  /** Verifies tokens and permissions (`labels:read`, `labels:write`, …) against IAM. */
  readonly auth: Auth;
}

/** Composition root of the masterdata service. */
export async function buildApp({ db, logger, databaseUrl, env, auth, credentials }: MasterdataDeps): Promise<HttpServer> {
  const app = await createHttpServer({ service: 'masterdata', logger, readiness: () => checkDatabase(db), credentials, idempotency: { db: db as Kysely<unknown> } });
  protectApiRoutes(app, auth);
  const repositories = referenceEntities.map((entity) => referenceRepository(db, entity));
  for (const repository of repositories) referenceRoutes(app, repository, referenceService(db, repositories, repository));
  await registerEventFeed(app, { source: 'masterdata', schema: 'masterdata', db, listenUrl: databaseUrl });
  const jobs = await startJobs({
    service: 'masterdata', db, declared: loadRegistry().service('masterdata').jobs ?? [], env, logger: logger || undefined,
    handlers: { 'outbox.prune': pruneOutboxJob(db), 'idempotency.prune': pruneIdempotencyKeysJob(db as Kysely<unknown>) },
  });
  registerJobRoutes(app, jobs);
  app.addHook('onClose', () => jobs.stop());
  return app;
}
