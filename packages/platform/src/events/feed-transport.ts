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
      const fetchAfter = (after: string | undefined, receive: ReceiveOptions) => fetchEvents(options.credentials, source, options.urlOf(source), after, receive);
      const ahead = readAhead(fetchAfter);
      return {
        mode,
        receive: async (after, receive) => ahead.receive(after ?? (mode === 'broadcast' ? await startOf(receive.signal) : undefined), receive),
        acknowledge: async () => undefined,
        close: async () => ahead.close(),
      };
    },
  };
}

type ReceiveOptions = { limit: number; waitMs: number; signal: AbortSignal };

/**
 * Asks for the page after a batch as soon as that batch is handed over, so the long poll already
 * waits at the producer while the consumer applies the batch (the usual next ask is for exactly
 * what follows it). A receive for another position (another instance moved the cursor, a failed
 * batch is retried) drops that read and asks anew: the consumer's stored position stays the only
 * truth, a read ahead only saves the round trip.
 */
function readAhead(fetchAfter: (after: string | undefined, options: ReceiveOptions) => Promise<EventEnvelope[]>) {
  let next: { after: string; page: Promise<{ events: EventEnvelope[] } | { error: unknown }>; abort: AbortController } | undefined;
  const drop = () => {
    next?.abort.abort();
    next = undefined;
  };
  const start = (after: string, options: ReceiveOptions) => {
    const abort = new AbortController();
    const page = fetchAfter(after, { limit: options.limit, waitMs: options.waitMs, signal: abort.signal }).then((events) => ({ events }), (error: unknown) => ({ error }));
    next = { after, page, abort };
  };
  return {
    async receive(after: string | undefined, options: ReceiveOptions): Promise<EventEnvelope[]> {
      let events: EventEnvelope[];
      if (next && after !== undefined && next.after === after) {
        const { page, abort } = next;
        next = undefined;
        const stop = () => abort.abort();
        options.signal.addEventListener('abort', stop, { once: true });
        try {
          const read = await page;
          if ('error' in read) throw read.error;
          events = read.events;
        } finally {
          options.signal.removeEventListener('abort', stop);
        }
      } else {
        drop();
        events = await fetchAfter(after, options);
      }
      if (events.length > 0 && !options.signal.aborted) start(events.at(-1)!.position, options);
      return events;
    },
    close: drop,
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
