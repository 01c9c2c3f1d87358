import type { Kysely } from 'kysely';
import path from 'node:path';
import { backingConfigSchemas, checkDatabase, createHttpServer, loadConfig, repositoryRoot, type AppDeps, type HttpServer } from '@archipelago/platform';
import { protectApiRoutes, type Auth } from '@archipelago/platform/auth';
import type { EventHandler } from '@archipelago/platform/events';
import { pruneIdempotencyKeysJob } from '@archipelago/platform/idempotency';
import type { ServiceCredentials } from '@archipelago/platform/internal-auth';
import { registerJobRoutes, startJobs } from '@archipelago/platform/jobs';
import { reconcileLookupsJob } from '@archipelago/platform/lookups';
import { connectRedis } from '@archipelago/platform/redis';
import { loadRegistry } from '@archipelago/registry';
import { archiveJob } from './archive/archive.ts';
import { archiveRepository } from './archive/archive.repository.ts';
import { registerArchiveRoutes } from './archive/archive.routes.ts';
import { fileObjectStore, type ObjectStore } from './archive/object-store.ts';
import type { NotificationDatabase } from './database.ts';
import { startIntegration, type NotificationPeers } from './integration.ts';
import { badgeCounter, memoryBadgeCache, redisBadgeCache } from './notifications/badges.ts';
import { notificationRepository } from './notifications/notification.repository.ts';
import { notificationRoutes } from './notifications/notification.routes.ts';
import { notificationService, orderEventHandler } from './notifications/notification.service.ts';
import { partitionJobs } from './notifications/partitions.ts';
import { startRealtime, type Realtime } from './realtime/realtime.ts';

export interface NotificationDeps extends AppDeps<NotificationDatabase> {
  readonly peers: NotificationPeers;
  readonly auth: Auth;
  readonly credentials: ServiceCredentials;
  /** Fallback poll of live delivery (default 1 s). */
  readonly pollMs?: number;
  /** Where archives go (default: a directory under the repository's .data/). */
  readonly archives?: ObjectStore;
}

export type NotificationApp = HttpServer & { readonly realtime: Realtime };

/** Composition root of the notification service. */
export async function buildApp({ db, logger, peers, auth, databaseUrl, env, credentials, pollMs, archives = fileObjectStore(path.join(repositoryRoot, '.data', 'archives')) }: NotificationDeps): Promise<NotificationApp> {
  const app = await createHttpServer({ service: 'notification', logger, readiness: () => checkDatabase(db), credentials, idempotency: { db: db as Kysely<unknown> } });
  protectApiRoutes(app, auth);
  const repository = notificationRepository(db);
  // REDIS_URL: badge counts shared by the instances, and one Socket.IO cluster (see README "Redis").
  const { REDIS_URL: redisUrl } = loadConfig(backingConfigSchemas.redis, env);
  const redisLogger = logger || undefined;
  const badges = badgeCounter(repository, redisUrl ? redisBadgeCache(connectRedis(redisUrl, { name: 'notification.badges', logger: redisLogger, app })) : memoryBadgeCache());
  const sockets = redisUrl ? connectRedis(redisUrl, { name: 'notification.socket.io', mode: 'streams', logger: redisLogger, app }) : undefined;
  const archive = archiveRepository(db);
  const realtime = await startRealtime(app, { auth, repository, badges, logger: logger || undefined, listenUrl: databaseUrl, pollMs, redis: sockets });
  const applyOrderEvents = orderEventHandler(repository, realtime) as EventHandler<unknown>;
  const { references, lookups } = await startIntegration(app, { db: db as Kysely<unknown>, peers, logger, credentials, applyOrderEvents });
  const service = notificationService(db, repository, references, badges, realtime);
  notificationRoutes(app, auth, service);
  // LOOKUP_RECONCILE_AT (cron, HH:MM or off) overrides the reconciliation's schedule.
  const jobs = await startJobs({
    service: 'notification', db, declared: loadRegistry().service('notification').jobs ?? [], env, logger: logger || undefined,
    handlers: { ...partitionJobs(repository), 'archive.run': archiveJob(archive, archives), 'idempotency.prune': pruneIdempotencyKeysJob(db as Kysely<unknown>), 'lookups.reconcile': reconcileLookupsJob(lookups) },
  });
  registerJobRoutes(app, jobs);
  registerArchiveRoutes(app, archive, archives);
  app.addHook('onClose', () => jobs.stop());
  return Object.assign(app, { realtime });
}
