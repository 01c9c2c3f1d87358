import { checkDatabase, createHttpServer, type HttpServer, type AppDeps } from '@archipelago/platform';
import type { MasterdataDatabase } from './database.ts';
import { labelRepository } from './labels/label.repository.ts';
import { labelRoutes } from './labels/label.routes.ts';

/** Composition root of the masterdata service. */
export async function buildApp({ db, logger }: AppDeps<MasterdataDatabase>): Promise<HttpServer> {
  const app = await createHttpServer({ service: 'masterdata', logger, readiness: () => checkDatabase(db) });
  labelRoutes(app, labelRepository(db));
  return app;
}
