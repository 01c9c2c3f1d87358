import type { ServiceCredentials } from '../internal-auth/credentials.ts';
import { internalFetch } from '../internal-auth/fetch.ts';
import type { EventEnvelope } from './envelope.ts';
import { registerEventFeed } from './feed.ts';
import { EventsPruned, type EventTransport, type Subscription } from './transport.ts';

/**
 * The default transport: no server beyond PostgreSQL and the services. A producer serves its
 * outbox as a long-polling feed (`GET /internal/v1/events`); a consumer asks for what follows
 * the position it stored in its own database, so its cursor is its acknowledgement.
 *
 * @example
 * const transport = feedTransport({ urlOf: (service) => peers[service], credentials });
 */
export function feedTransport(options: { urlOf: (service: string) => string; credentials: ServiceCredentials }): EventTransport {
  return {
    name: 'feed',
    async publish(producer) {
      await registerEventFeed(producer.app, { source: producer.source, schema: producer.schema, db: producer.db, listenUrl: producer.listenUrl });
    },
    subscribe({ source, mode = 'group' }): Subscription {
      // A broadcast starts at the feed's head when it first asks, and keeps that in memory.
      let started: Promise<string | undefined> | undefined;
      const startOf = (signal: AbortSignal) => {
        started ??= fetchHead(options.credentials, source, options.urlOf(source), signal).catch((error: unknown) => {
          started = undefined;
          throw error;
        });
        return started;
      };
      return {
        mode,
        receive: async (after, receive) =>
          fetchEvents(options.credentials, source, options.urlOf(source), after ?? (mode === 'broadcast' ? await startOf(receive.signal) : undefined), receive),
        acknowledge: async () => undefined,
        close: async () => undefined,
      };
    },
  };
}

async function fetchHead(credentials: ServiceCredentials, source: string, baseUrl: string, signal: AbortSignal): Promise<string | undefined> {
  const url = new URL('/internal/v1/events/head', baseUrl);
  const response = await internalFetch(credentials, source, url, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
  if (!response.ok) throw new Error(`event feed ${url.origin} answered ${response.status}`);
  return ((await response.json()) as { position: string | null }).position ?? undefined;
}

/** One long poll of a producer's feed: the events after `after` (undefined: from the start). */
export async function fetchEvents(credentials: ServiceCredentials, source: string, baseUrl: string, after: string | undefined, options: { limit: number; waitMs: number; signal: AbortSignal }): Promise<EventEnvelope[]> {
  const url = new URL('/internal/v1/events', baseUrl);
  if (after) url.searchParams.set('after', after);
  url.searchParams.set('limit', String(options.limit));
  url.searchParams.set('waitMs', String(options.waitMs));
  const response = await internalFetch(credentials, source, url, { signal: AbortSignal.any([options.signal, AbortSignal.timeout(options.waitMs + 10_000)]) });
  if (response.status === 410) throw new EventsPruned(((await response.json()) as { prunedThrough: string }).prunedThrough);
  if (!response.ok) throw new Error(`event feed ${url.origin} answered ${response.status}`);
  return ((await response.json()) as { events: EventEnvelope[] }).events;
}
