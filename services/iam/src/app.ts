import { checkDatabase, createHttpServer, type HttpServer, type AppDeps } from '@archipelago/platform';
import type { IamDatabase } from './database.ts';

/** Composition root of the iam service; its domain routes arrive with their issue. */
export async function buildApp({ db, logger }: AppDeps<IamDatabase>): Promise<HttpServer> {
  return createHttpServer({ service: 'iam', logger, readiness: () => checkDatabase(db) });
}
