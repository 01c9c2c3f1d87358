import { checkDatabase, createHttpServer, type HttpServer, type AppDeps } from '@archipelago/platform';
import type { ReportingDatabase } from './database.ts';

/** Composition root of the reporting service; its domain routes arrive with their issue. */
export async function buildApp({ db, logger, credentials }: AppDeps<ReportingDatabase>): Promise<HttpServer> {
  return createHttpServer({ service: 'reporting', logger, readiness: () => checkDatabase(db), credentials });
}
