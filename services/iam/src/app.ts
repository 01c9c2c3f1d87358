import { checkDatabase, createHttpServer, type HttpServer, type ServiceDeps } from '@archipelago/platform';
import type { IamDatabase } from './database.ts';

/** Composition root of the iam service; its domain routes arrive with their issue. */
export async function buildApp({ db, logger }: Pick<ServiceDeps<IamDatabase>, 'db' | 'logger'>): Promise<HttpServer> {
  return createHttpServer({ service: 'iam', logger, readiness: () => checkDatabase(db) });
}
