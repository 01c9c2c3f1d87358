import { AppError, checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import { registerEventFeed } from '@archipelago/platform/events';
import { coreEntities, resources } from './catalog.ts';
import type { CoreDatabase } from './database.ts';
import { entityRepository } from './entity/entity.repository.ts';
import { entityRoutes } from './entity/entity.routes.ts';
import { entityService } from './entity/entity.service.ts';
import { orderRepository } from './orders/order.repository.ts';
import { orderRoutes } from './orders/order.routes.ts';
import { orderService } from './orders/order.service.ts';
import type { References } from './references.ts';
import { reportQueries } from './reports/report.queries.ts';
import { reportRoutes } from './reports/report.routes.ts';

// Placeholder until the platform's reference validator is wired in.
const unwiredReferences: References = {
  async check(checks) {
    if (checks.some((c) => c.value !== null && c.value !== undefined)) throw new AppError('UNAVAILABLE', 'Reference validation is not wired yet');
  },
};

/** Composition root of the core service. */
export async function buildApp({ db, logger, databaseUrl }: AppDeps<CoreDatabase>, options: { references?: References } = {}): Promise<HttpServer> {
  const app = await createHttpServer({ service: 'core', logger, readiness: () => checkDatabase(db) });
  const references = options.references ?? unwiredReferences;
  const repositories = coreEntities.map((entity) => entityRepository(db, entity));
  for (const repository of repositories) entityRoutes(app, repository, entityService(db, references, repositories, repository));
  const orders = orderRepository(db);
  orderRoutes(app, orders, orderService(db, references, orders, repositories.find((r) => r.entity === resources)!));
  reportRoutes(app, reportQueries(db));
  await registerEventFeed(app, { source: 'core', schema: 'core', db, listenUrl: databaseUrl });
  return app;
}
