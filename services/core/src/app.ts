import { checkDatabase, createHttpServer, type HttpServer, type AppDeps } from '@archipelago/platform';
import type { CoreDatabase } from './database.ts';

/** Composition root of the core service; its domain routes arrive with their issue. */
export async function buildApp({ db, logger }: AppDeps<CoreDatabase>): Promise<HttpServer> {
  return createHttpServer({ service: 'core', logger, readiness: () => checkDatabase(db) });
}
