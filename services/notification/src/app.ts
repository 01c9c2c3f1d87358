import { checkDatabase, createHttpServer, type HttpServer, type AppDeps } from '@archipelago/platform';
import type { NotificationDatabase } from './database.ts';

/** Composition root of the notification service; its domain routes arrive with their issue. */
export async function buildApp({ db, logger, credentials }: AppDeps<NotificationDatabase>): Promise<HttpServer> {
  return createHttpServer({ service: 'notification', logger, readiness: () => checkDatabase(db), credentials });
}
