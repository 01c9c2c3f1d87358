import { checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import { protectApiRoutes, type Auth } from '@archipelago/platform/auth';
import { pruneOutboxJob, registerEventFeed } from '@archipelago/platform/events';
import { pruneIdempotencyKeysJob } from '@archipelago/platform/idempotency';
import type { ServiceCredentials } from '@archipelago/platform/internal-auth';
import { registerJobRoutes, startJobs } from '@archipelago/platform/jobs';
import { reconcileLookupsJob } from '@archipelago/platform/lookups';
import { loadRegistry } from '@archipelago/registry';
import type { Kysely } from 'kysely';
import { coreEntities, resources } from './catalog.ts';
import type { CoreDatabase } from './database.ts';
import { entityRepository } from './entity/entity.repository.ts';
import { entityRoutes } from './entity/entity.routes.ts';
import { entityService } from './entity/entity.service.ts';
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
  const repositories = coreEntities.map((entity) => entityRepository(db, entity));
  const lookups = lookupReader(db);
  for (const repository of repositories) entityRoutes(app, auth, repository, entityService(db, references, lookups, repositories, repository));
  const orders = orderRepository(db);
  orderRoutes(app, auth, orders, orderService(db, references, orders, repositories.find((r) => r.entity === resources)!));
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
