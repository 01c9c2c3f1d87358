import type { Kysely } from 'kysely';
import { backingConfigSchemas, checkDatabase, createHttpServer, loadConfig, type AppDeps, type HttpServer } from '@archipelago/platform';
import { protectApiRoutes, type Auth } from '@archipelago/platform/auth';
import { composeService } from '@archipelago/platform/compose';
import type { ServiceCredentials } from '@archipelago/platform/internal-auth';
import { cachedReferences, ownerCodeResolver } from '@archipelago/platform/references';
import { archiveJob } from './archive/archive.ts';
import { archiveRepository } from './archive/archive.repository.ts';
import { registerArchiveRoutes } from './archive/archive.routes.ts';
import { archiveSettingsFromEnv } from './archive/archive.settings.ts';
import type { ObjectStore } from './archive/object-store.ts';
import type { NotificationDatabase } from './database.ts';
import { badgeCounter, memoryBadgeCache, redisBadgeCache } from './notifications/badges.ts';
import { notificationRepository } from './notifications/notification.repository.ts';
import { notificationRoutes } from './notifications/notification.routes.ts';
import { notificationService, orderEventHandler, pruneAppliedEventsJob } from './notifications/notification.service.ts';
import { partitionJobs } from './notifications/partitions.ts';
import { startRealtime, type Realtime } from './realtime/realtime.ts';

export interface NotificationDeps extends AppDeps<NotificationDatabase> {
  /** Its peers' URLs (`dependsOn`, `calls`): IAM, core, masterdata. */
  readonly peer: (key: string) => string;
  readonly auth: Auth;
  readonly credentials: ServiceCredentials;
  /** Fallback poll of live delivery (default 1 s). */
  readonly pollMs?: number;
  /** Where archives go (default: from the environment, see archive.settings.ts). */
  readonly archives?: ObjectStore;
}

export type NotificationApp = HttpServer & { readonly realtime: Realtime };

const DEPARTMENT_TTL_MS = 60 * 60_000;
const MISS_TTL_MS = 10_000;

/** Composition root of the notification service. */
export async function buildApp(deps: NotificationDeps): Promise<NotificationApp> {
  const { db, logger, auth, databaseUrl, env, credentials, pollMs, archives } = deps;
  const app = await createHttpServer({ service: 'notification', logger, readiness: () => checkDatabase(db), credentials, idempotency: { db: db as Kysely<unknown> } });
  protectApiRoutes(app, auth);
  const repository = notificationRepository(db);
  // REDIS_URL: badge counts shared by the instances, and one Socket.IO cluster (see README "Redis").
  const { REDIS_URL: redisUrl } = loadConfig(backingConfigSchemas.redis, env);
  const redisLogger = logger || undefined;
  // ioredis is loaded only when configured: the embedded default does without it (memory, start time).
  const redisModule = redisUrl ? await import('@archipelago/platform/redis') : undefined;
  const badges = badgeCounter(repository, redisUrl && redisModule ? redisBadgeCache(redisModule.connectRedis(redisUrl, { name: 'notification.badges', logger: redisLogger, app })) : memoryBadgeCache());
  const sockets = redisUrl && redisModule ? redisModule.connectRedis(redisUrl, { name: 'notification.socket.io', mode: 'streams', logger: redisLogger, app }) : undefined;
  const archive = archiveRepository(db);
  const settings = archiveSettingsFromEnv(env ?? {});
  const store = archives ?? settings.store;
  const realtime = await startRealtime(app, { auth, repository, badges, logger: logger || undefined, listenUrl: databaseUrl, pollMs, redis: sockets });
  // A notification's department is checked with masterdata itself (no local copy), cached.
  const departments = cachedReferences({
    owner: 'masterdata', ttlMs: DEPARTMENT_TTL_MS, negativeTtlMs: MISS_TTL_MS,
    resolve: ownerCodeResolver({ owner: 'masterdata', url: deps.peer('masterdata'), path: '/internal/v1/departments/validate', credentials }),
  });
  // Core's order events feed the rules (the registry's notification.orders); its orders_lookup,
  // users, the identity provider's changes and the platform's jobs come from the declaration.
  const { references } = await composeService(app, {
    service: 'notification', deps, auth,
    handlers: { 'notification.orders': orderEventHandler(repository, realtime) },
    references: { department: departments },
    jobs: { ...partitionJobs(repository), 'archive.run': archiveJob(archive, store, settings), 'applied-events.prune': pruneAppliedEventsJob(repository) },
  });
  const service = notificationService(db, repository, references, badges, realtime);
  notificationRoutes(app, auth, service);
  registerArchiveRoutes(app, archive, store);
  return Object.assign(app, { realtime });
}
