import { checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import { registerEventFeed } from '@archipelago/platform/events';
import type { MasterdataDatabase } from './database.ts';
import { labelRepository } from './labels/label.repository.ts';
import { labelRoutes } from './labels/label.routes.ts';
import { labelService } from './labels/label.service.ts';

/** Composition root of the masterdata service. */
export async function buildApp({ db, logger, databaseUrl }: AppDeps<MasterdataDatabase>): Promise<HttpServer> {
  const app = await createHttpServer({ service: 'masterdata', logger, readiness: () => checkDatabase(db) });
  const labels = labelRepository(db);
  labelRoutes(app, labels, labelService(db, labels));
  await registerEventFeed(app, { source: 'masterdata', schema: 'masterdata', db, listenUrl: databaseUrl });
  return app;
}
