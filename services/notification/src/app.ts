import { checkDatabase, createHttpServer, type HttpServer, type ServiceDeps } from '@archipelago/platform';
import type { NotificationDatabase } from './database.ts';

/** Composition root of the notification service; its domain routes arrive with their issue. */
export async function buildApp({ db, logger }: Pick<ServiceDeps<NotificationDatabase>, 'db' | 'logger'>): Promise<HttpServer> {
  return createHttpServer({ service: 'notification', logger, readiness: () => checkDatabase(db) });
}
