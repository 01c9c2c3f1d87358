import type { Kysely } from 'kysely';
import type { HttpServer, Logger } from '@archipelago/platform';
import { feedTransport, registerConsumerRoutes, startConsumer, type EventHandler } from '@archipelago/platform/events';
import { internalFetch, type ServiceCredentials } from '@archipelago/platform/internal-auth';
import { httpExportReader, registerLookupRoutes, startLookupSync, type LookupSync } from '@archipelago/platform/lookups';
import { cachedReferences, createReferenceValidator, iamUserResolver, type ReferenceValidator } from '@archipelago/platform/references';
import { loadRegistry } from '@archipelago/registry';

/** Base URLs of the services notification talks to. */
export interface NotificationPeers {
  readonly iam: string;
  readonly core: string;
  readonly masterdata: string;
}

export interface IntegrationOptions {
  readonly db: Kysely<unknown>;
  readonly peers: NotificationPeers;
  readonly logger: Logger | false;
  readonly credentials: ServiceCredentials;
  /** The rules' handler of core's order events, applied in the consumer's transaction. */
  readonly applyOrderEvents: EventHandler<unknown>;
}

export interface Integration {
  readonly lookups: LookupSync;
  readonly references: ReferenceValidator;
}

const USER_TTL_MS = 5 * 60_000; // seed 003
const DEPARTMENT_TTL_MS = 60 * 60_000; // seed 003
const MISS_TTL_MS = 10_000;

// Masterdata's batch check, `POST /internal/v1/departments/validate`: active departments only.
function masterdataDepartmentResolver(masterdataUrl: string, credentials: ServiceCredentials) {
  return async (codes: readonly string[]): Promise<ReadonlySet<string>> => {
    const response = await internalFetch(credentials, 'masterdata', new URL('/internal/v1/departments/validate', masterdataUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ codes }),
      signal: AbortSignal.timeout(2_000),
    });
    if (!response.ok) throw new Error(`masterdata answered ${response.status} to department validation`);
    const body = (await response.json()) as { items: { code: string; active: boolean }[] };
    return new Set(body.items.filter((item) => item.active).map((item) => item.code));
  };
}

/**
 * Notification's side of the islands' trade: core's order events feed the rules (a group
 * consumer: one effect per event across the instances, a redelivery makes nothing twice) and the
 * registry-declared orders_lookup; departments and users are checked with their owners, cached.
 */
export async function startIntegration(app: HttpServer, options: IntegrationOptions): Promise<Integration> {
  const logger = options.logger || undefined;
  const urlOf = (service: string) => options.peers[service as keyof NotificationPeers];
  const transport = feedTransport({ urlOf, credentials: options.credentials });
  const lookups = await startLookupSync({
    service: 'notification',
    db: options.db,
    lookups: loadRegistry().service('notification').lookups ?? [],
    transport,
    readExport: httpExportReader(urlOf, options.credentials),
    logger,
  });
  registerLookupRoutes(app, lookups);
  const orderEvents = startConsumer({
    mode: 'group',
    name: 'notification.orders',
    subscription: transport.subscribe({ source: 'core', group: 'notification.orders', mode: 'group' }),
    db: options.db,
    handle: options.applyOrderEvents,
    onError: (error, context) => logger?.warn({ err: error, event: context.event?.id, attempt: context.attempt }, 'order event not turned into notifications yet'),
  });
  registerConsumerRoutes(app, options.db, [...lookups.consumers, orderEvents]);
  app.addHook('onClose', async () => {
    await Promise.all([lookups.stop(), orderEvents.stop()]);
  });

  const references = createReferenceValidator({
    department: cachedReferences({ owner: 'masterdata', resolve: masterdataDepartmentResolver(options.peers.masterdata, options.credentials), ttlMs: DEPARTMENT_TTL_MS, negativeTtlMs: MISS_TTL_MS }),
    user: cachedReferences({ owner: 'iam', resolve: iamUserResolver(options.peers.iam, options.credentials), ttlMs: USER_TTL_MS, negativeTtlMs: MISS_TTL_MS }),
  });
  return { lookups, references };
}
