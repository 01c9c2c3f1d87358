import type { Kysely } from 'kysely';
import { checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import { protectApiRoutes, type Auth } from '@archipelago/platform/auth';
import type { EventHandler } from '@archipelago/platform/events';
import { pruneIdempotencyKeysJob } from '@archipelago/platform/idempotency';
import type { ServiceCredentials } from '@archipelago/platform/internal-auth';
import { registerJobRoutes, startJobs } from '@archipelago/platform/jobs';
import { reconcileLookupsJob } from '@archipelago/platform/lookups';
import { loadRegistry } from '@archipelago/registry';
import { archiveJob } from './archive/archive.ts';
import { archiveRepository } from './archive/archive.repository.ts';
import { registerArchiveRoutes } from './archive/archive.routes.ts';
import { archiveSettingsFromEnv } from './archive/archive.settings.ts';
import type { ObjectStore } from './archive/object-store.ts';
import type { NotificationDatabase } from './database.ts';
import { startIntegration, type NotificationPeers } from './integration.ts';
import { badgeCounter } from './notifications/badges.ts';
import { notificationRepository } from './notifications/notification.repository.ts';
import { notificationRoutes } from './notifications/notification.routes.ts';
import { notificationService, orderEventHandler, pruneAppliedEventsJob } from './notifications/notification.service.ts';
import { partitionJobs } from './notifications/partitions.ts';
import { startRealtime, type Realtime } from './realtime/realtime.ts';

export interface NotificationDeps extends AppDeps<NotificationDatabase> {
  readonly peers: NotificationPeers;
  readonly auth: Auth;
  readonly credentials: ServiceCredentials;
  /** Fallback poll of live delivery (default 1 s). */
  readonly pollMs?: number;
  /** Where archives go (default: from the environment, see archive.settings.ts). */
  readonly archives?: ObjectStore;
}

export type NotificationApp = HttpServer & { readonly realtime: Realtime };

/** Composition root of the notification service. */
export async function buildApp({ db, logger, peers, auth, databaseUrl, env, credentials, pollMs, archives }: NotificationDeps): Promise<NotificationApp> {
  const app = await createHttpServer({ service: 'notification', logger, readiness: () => checkDatabase(db), credentials, idempotency: { db: db as Kysely<unknown> } });
  protectApiRoutes(app, auth);
  const repository = notificationRepository(db);
  const badges = badgeCounter(repository);
  const archive = archiveRepository(db);
  const settings = archiveSettingsFromEnv(env ?? {});
  const store = archives ?? settings.store;
  const realtime = await startRealtime(app, { auth, repository, badges, logger: logger || undefined, listenUrl: databaseUrl, pollMs });
  const applyOrderEvents = orderEventHandler(repository, realtime) as EventHandler<unknown>;
  const { references, lookups } = await startIntegration(app, { db: db as Kysely<unknown>, peers, logger, credentials, applyOrderEvents });
  const service = notificationService(db, repository, references, badges, realtime);
  notificationRoutes(app, auth, service);
  // LOOKUP_RECONCILE_AT (cron, HH:MM or off) overrides the reconciliation's schedule.
  const jobs = await startJobs({
    service: 'notification', db, declared: loadRegistry().service('notification').jobs ?? [], env, logger: logger || undefined,
    handlers: { ...partitionJobs(repository), 'archive.run': archiveJob(archive, store, settings), 'idempotency.prune': pruneIdempotencyKeysJob(db as Kysely<unknown>), 'applied-events.prune': pruneAppliedEventsJob(repository), 'lookups.reconcile': reconcileLookupsJob(lookups) },
  });
  registerJobRoutes(app, jobs);
  registerArchiveRoutes(app, archive, store);
  app.addHook('onClose', () => jobs.stop());
  return Object.assign(app, { realtime });
}
