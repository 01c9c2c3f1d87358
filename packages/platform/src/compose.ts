import type { Kysely, Transaction } from 'kysely';
import type { Static, TObject } from 'typebox';
import { loadRegistry, typeMatches, type Registry, type serviceDefinitions, type ServiceSubscription } from '@archipelago/registry';
import type { Auth } from './auth/authenticator.ts';
import { startConsumer, type Consumer, type ConsumerOptions } from './events/consumer.ts';
import { registerConsumerRoutes } from './events/dead-letters.ts';
import type { EventEnvelope } from './events/envelope.ts';
import { pruneOutboxJob } from './events/outbox.ts';
import type { EventTransport } from './events/transport.ts';
import { createTransport } from './events/transports.ts';
import type { HttpServer } from './http.ts';
import { pruneIdempotencyKeysJob } from './idempotency/keys.ts';
import { registerJobRoutes } from './jobs/routes.ts';
import { startJobs, type JobHandler, type Jobs } from './jobs/scheduler.ts';
import { httpExportReader } from './lookups/reconcile.ts';
import { registerLookupRoutes } from './lookups/routes.ts';
import { reconcileLookupsJob, startLookupSync, type LookupSync } from './lookups/sync.ts';
import { cachedReferences, iamUserResolver, lookupReferences } from './references/sources.ts';
import { createReferenceValidator, type ReferenceSource, type ReferenceValidator } from './references/validator.ts';
import type { AppDeps } from './service.ts';
import { StartupError } from './startup.ts';

// ── Typed handlers, derived from the registry's declarations ───────────────────────────────────
type Definitions = typeof serviceDefinitions;
type Publishes<Source> = Source extends keyof Definitions ? (Definitions[Source] extends { readonly events: { readonly publishes: infer P } } ? P : never) : never;
type Matching<P, Pattern> = Pattern extends `${infer Entity}.*` ? Extract<keyof P, `${Entity}.${string}`> : Extract<keyof P, Pattern>;

/** An event of type `T` as a consumer receives it, its payload typed by the schema its producer declares. */
export type TypedEvent<P, T> = T extends keyof P & string
  ? P[T] extends TObject ? Omit<EventEnvelope<Static<P[T]>>, 'type'> & { readonly type: T } : never
  : never;
type EventsOf<Sub> = Sub extends { readonly from: infer F; readonly types: readonly (infer T)[] } ? TypedEvent<Publishes<F>, Matching<Publishes<F>, T>> : never;
type Consumes<S> = S extends keyof Definitions ? (Definitions[S] extends { readonly events: { readonly consumes: readonly (infer C)[] } } ? C : never) : never;
type HandlerOf<Sub, DB> = Sub extends { readonly mode: 'broadcast' }
  ? (events: readonly EventsOf<Sub>[]) => Promise<void>
  : (trx: Transaction<DB>, events: readonly EventsOf<Sub>[]) => Promise<void>;

/**
 * One handler per consumer the service declares (`events.consumes`), by its name: a group's runs
 * in the consumer's transaction, a broadcast's without one; each receives only its declared types.
 */
export type ConsumerHandlers<S extends string, DB> = {
  readonly [Sub in Consumes<S> as Sub extends { readonly name: infer N extends string } ? N : never]: HandlerOf<Sub, DB>;
};

type AnyHandler = (...args: never[]) => Promise<void>;

/** What a composition root hands the platform; everything else is read from the service's declaration. */
export type ComposeOptions<S extends string, DB> = {
  readonly service: S;
  readonly deps: AppDeps<DB>;
  /** The service's token verifier: the identity provider's role changes drop its cached permissions. */
  readonly auth?: Auth;
  /** Reference sources beyond the lookups' codes and the identity provider's users (e.g. checked through an owner's API). */
  readonly references?: Readonly<Record<string, ReferenceSource>>;
  /** Handlers of the service's own jobs; the platform brings `outbox.prune`, `idempotency.prune`, `lookups.reconcile`. */
  readonly jobs?: Readonly<Record<string, JobHandler>>;
  /** Another registry than the process's (tests that change a declaration). */
  readonly registry?: Registry;
  /** Consumer tuning (batch size, long-poll wait, retries), for every consumer. */
  readonly consumer?: Pick<ConsumerOptions<unknown>, 'batchSize' | 'waitMs' | 'maxAttempts' | 'backoffMs'>;
} & (keyof ConsumerHandlers<S, DB> extends never ? { readonly handlers?: Readonly<Record<string, AnyHandler>> } : { readonly handlers: ConsumerHandlers<S, DB> });

/** What the platform started for a service from its declaration. */
export interface ServiceComposition {
  readonly transport: EventTransport;
  readonly lookups: LookupSync;
  /** Code references (against the lookups), users (through the identity provider) and the extra sources. */
  readonly references: ReferenceValidator;
  readonly consumers: readonly Consumer[];
  readonly jobs: Jobs | undefined;
}

const USER_TTL_MS = 5 * 60_000;
const MISS_TTL_MS = 10_000;

/**
 * Composes a service from its registry declaration (docs/architecture.md#composition): publishes
 * its events through the transport (`EVENT_TRANSPORT`), starts its lookups (one group consumer per
 * producer), its declared consumers with the given handlers (each gets only its declared types),
 * and, when it verifies tokens, the identity provider's change broadcast (cached users and
 * permissions dropped in every instance); builds its reference validator (lookup codes, users,
 * extras); schedules its jobs; registers the internal routes of all of it. Stops with the app.
 *
 * @example
 * const { references } = await composeService(app, { service: 'notification', deps, auth, handlers: { 'notification.orders': applyOrderEvents } });
 */
export async function composeService<S extends string, DB>(app: HttpServer, options: ComposeOptions<S, DB>): Promise<ServiceComposition> {
  const registry = options.registry ?? loadRegistry();
  const service = registry.service(options.service);
  const { deps } = options;
  const db = deps.db as Kysely<unknown>;
  const logger = deps.logger || undefined;
  const credentials = deps.credentials;
  const peer = (key: string) => {
    if (!deps.peer) throw new StartupError(`${service.key} needs ${key}'s URL, but was given no peers (deps.peer)`);
    return deps.peer(key);
  };
  const needsPeers = service.subscriptions.length > 0;
  if (needsPeers && !credentials) throw new StartupError(`${service.key} follows other services' events, so it needs its service credentials (deps.credentials)`);
  const transport = deps.transport ?? (await createTransport('feed', { service: service.key, peer, credentials: credentials!, logger }));

  if (Object.keys(service.events?.publishes ?? {}).length > 0) {
    await transport.publish({ source: service.key, schema: service.database, db, app, listenUrl: deps.databaseUrl });
  }

  const lookups = await startLookupSync({
    service: service.key, db, lookups: service.lookups ?? [], transport, logger, consumer: options.consumer,
    readExport: httpExportReader(peer, credentials!),
  });
  if ((service.lookups ?? []).length > 0) registerLookupRoutes(app, lookups);

  const handlers: Readonly<Record<string, AnyHandler>> = options.handlers ?? {};
  const declared = service.subscriptions.filter((subscription) => subscription.for === 'handler');
  const unhandled = declared.filter((subscription) => !handlers[subscription.name]).map((subscription) => subscription.name);
  const undeclared = Object.keys(handlers).filter((name) => !declared.some((subscription) => subscription.name === name));
  if (unhandled.length > 0) throw new StartupError(`${service.key} declares consumer(s) ${unhandled.join(', ')} in the registry but gives no handler for them`);
  if (undeclared.length > 0) throw new StartupError(`${service.key} gives handler(s) ${undeclared.join(', ')} that the registry does not declare (events.consumes)`);

  const identity = registry.services.find((candidate) => candidate.identity)?.key;
  const users = identity !== undefined && (service.dependsOn?.includes(identity) || service.calls?.includes(identity))
    ? cachedReferences({ owner: identity, resolve: iamUserResolver(peer(identity), credentials!), ttlMs: USER_TTL_MS, negativeTtlMs: MISS_TTL_MS })
    : undefined;

  const consumers: Consumer[] = [...lookups.consumers];
  const common = (subscription: ServiceSubscription) => ({
    ...options.consumer,
    name: subscription.name,
    subscription: transport.subscribe({ source: subscription.from, group: subscription.name, mode: subscription.mode }),
    onError: (error: unknown, context: { event?: EventEnvelope; attempt?: number }) =>
      logger?.warn({ err: error, consumer: subscription.name, event: context.event?.id, attempt: context.attempt }, 'event not applied yet'),
  });
  for (const subscription of declared) {
    const handler = handlers[subscription.name] as unknown as (...args: unknown[]) => Promise<void>;
    const mine = (events: readonly EventEnvelope[]) => events.filter((event) => subscription.types.some((pattern) => typeMatches(pattern, event.type)));
    consumers.push(subscription.mode === 'broadcast'
      ? startConsumer({ ...common(subscription), mode: 'broadcast', handle: async (events) => { const wanted = mine(events); if (wanted.length > 0) await handler(wanted); } })
      : startConsumer({ ...common(subscription), mode: 'group', db, handle: async (trx, events) => { const wanted = mine(events); if (wanted.length > 0) await handler(trx, wanted); } }));
  }
  // The caches are this instance's memory, so every instance sees every event: a broadcast.
  for (const subscription of service.subscriptions.filter((candidate) => candidate.for === 'identity')) {
    consumers.push(startConsumer({
      ...common(subscription),
      mode: 'broadcast',
      handle: async (events) => {
        for (const event of events) {
          if (event.aggregate.type === 'user') users?.invalidate(event.aggregate.id);
          if (event.type === 'role.permissions-changed') options.auth?.invalidateAuthorization();
        }
      },
      onGap: async () => {
        users?.invalidateAll();
        options.auth?.invalidateAuthorization();
      },
      onError: (error) => logger?.debug({ err: error, consumer: subscription.name }, `${subscription.from}'s changes not followed yet`),
    }));
  }
  if (consumers.length > 0) registerConsumerRoutes(app, db, consumers, { deadLetters: service.subscriptions.some((subscription) => subscription.mode === 'group') });

  const sources: Record<string, ReferenceSource> = {};
  for (const lookup of service.lookups ?? []) {
    sources[lookup.entity] = lookupReferences(db, lookup.table, { key: lookup.key, owner: lookup.from, active: lookup.columns.is_active === 'boolean' ? 'is_active' : false });
  }
  if (users) sources.user = users;
  for (const [ref, source] of Object.entries(options.references ?? {})) {
    if (ref in sources) throw new StartupError(`${service.key}'s reference source "${ref}" is already derived from its declaration (a lookup or the identity provider's users)`);
    sources[ref] = source;
  }

  const jobs = await startServiceJobs(app, service.key, service.jobs ?? [], { deps, lookups, extra: options.jobs ?? {}, publishes: Object.keys(service.events?.publishes ?? {}).length > 0 });
  app.addHook('onClose', async () => {
    await jobs?.stop();
    await Promise.all([lookups.stop(), ...consumers.filter((consumer) => !lookups.consumers.includes(consumer)).map((consumer) => consumer.stop())]);
  });
  return { transport, lookups, references: createReferenceValidator(sources), consumers, jobs };
}

// The platform's own jobs, for the services that declare them, beside the service's.
async function startServiceJobs<DB>(
  app: HttpServer,
  service: string,
  declared: NonNullable<Registry['services'][number]['jobs']>,
  options: { deps: AppDeps<DB>; lookups: LookupSync; extra: Readonly<Record<string, JobHandler>>; publishes: boolean },
): Promise<Jobs | undefined> {
  if (declared.length === 0) return undefined;
  const db = options.deps.db as Kysely<unknown>;
  const platform: Record<string, JobHandler> = {
    'idempotency.prune': pruneIdempotencyKeysJob(db),
    'lookups.reconcile': reconcileLookupsJob(options.lookups),
    ...(options.publishes ? { 'outbox.prune': pruneOutboxJob(db) } : {}),
  };
  const names = new Set(declared.map((job) => job.name));
  const handlers = { ...Object.fromEntries(Object.entries(platform).filter(([name]) => names.has(name))), ...options.extra };
  const jobs = await startJobs({ service, db, declared, handlers, env: options.deps.env, logger: options.deps.logger || undefined });
  registerJobRoutes(app, jobs);
  return jobs;
}
