import type { Kysely } from 'kysely';
import type { HttpServer, Logger } from '@archipelago/platform';
import type { Auth } from '@archipelago/platform/auth';
import type { ServiceCredentials } from '@archipelago/platform/internal-auth';
import { feedTransport, registerConsumerRoutes, startConsumer } from '@archipelago/platform/events';
import { httpExportReader, registerLookupRoutes, startLookupSync, type LookupSync } from '@archipelago/platform/lookups';
import { cachedReferences, createReferenceValidator, iamUserResolver, lookupReferences, type ReferenceValidator } from '@archipelago/platform/references';
import { loadRegistry } from '@archipelago/registry';

/** Base URLs of the services core depends on (the registry's `dependsOn`). */
export interface CorePeers {
  readonly masterdata: string;
  readonly iam: string;
}

export interface IntegrationOptions {
  readonly db: Kysely<unknown>;
  readonly peers: CorePeers;
  readonly auth: Auth;
  readonly logger: Logger | false;
  readonly credentials: ServiceCredentials;
}

/** What core keeps of other services: lookup tables, and how it checks references to them. */
export interface Integration {
  readonly lookups: LookupSync;
  readonly references: ReferenceValidator;
}

const USER_TTL_MS = 5 * 60_000; // seed 003
const MISS_TTL_MS = 10_000;

/**
 * Starts core's side of the islands' trade: the registry-declared lookup tables follow
 * masterdata (a group subscription), and references are checked against them (codes) or through
 * IAM (user ids, cached and dropped in every instance when IAM announces a change, through a
 * broadcast subscription; IAM's role changes also drop the cached permissions). Stops with the app.
 */
export async function startIntegration(app: HttpServer, options: IntegrationOptions): Promise<Integration> {
  const logger = options.logger || undefined;
  const urlOf = (service: string) => options.peers[service as keyof CorePeers];
  const transport = feedTransport({ urlOf, credentials: options.credentials });
  const lookups = await startLookupSync({
    service: 'core',
    db: options.db,
    lookups: loadRegistry().service('core').lookups ?? [],
    transport,
    readExport: httpExportReader(urlOf, options.credentials),
    logger,
  });
  registerLookupRoutes(app, lookups);

  const users = cachedReferences({ owner: 'iam', resolve: iamUserResolver(options.peers.iam, options.credentials), ttlMs: USER_TTL_MS, negativeTtlMs: MISS_TTL_MS });
  // The caches are this instance's memory, so every instance must see every event: a broadcast
  // (the registry says so too). A group would let one instance take the event from the others.
  const userChanges = startConsumer({
    mode: 'broadcast',
    name: 'core.iam-changes',
    subscription: transport.subscribe({ source: 'iam', group: 'core.iam-changes', mode: 'broadcast' }),
    handle: async (events) => {
      for (const event of events) {
        if (event.aggregate.type === 'user') users.invalidate(event.aggregate.id);
        if (event.type === 'role.permissions-changed') options.auth.invalidateAuthorization();
      }
    },
    onGap: async () => {
      users.invalidateAll();
      options.auth.invalidateAuthorization();
    },
    onError: (error) => logger?.debug({ err: error }, 'iam user events not followed yet'),
  });
  registerConsumerRoutes(app, options.db, [...lookups.consumers, userChanges]);
  app.addHook('onClose', async () => {
    await Promise.all([lookups.stop(), userChanges.stop()]);
  });

  const references = createReferenceValidator({
    label: lookupReferences(options.db, 'labels_lookup', { owner: 'masterdata' }),
    region: lookupReferences(options.db, 'regions_lookup', { owner: 'masterdata' }),
    district: lookupReferences(options.db, 'districts_lookup', { owner: 'masterdata' }),
    department: lookupReferences(options.db, 'departments_lookup', { owner: 'masterdata' }),
    'classification-code': lookupReferences(options.db, 'classification_codes_lookup', { owner: 'masterdata' }),
    user: users,
  });
  return { lookups, references };
}
