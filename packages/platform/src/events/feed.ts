import { EventEmitter } from 'node:events';
import type { Kysely } from 'kysely';
import pg from 'pg';
import Type from 'typebox';
import type { HttpServer } from '../http.ts';
import { outboxChannel, parsePosition, readOutbox } from './outbox.ts';

export interface EventFeedOptions<DB> {
  /** Registry key of this (producing) service. */
  readonly source: string;
  /** Schema of the outbox table (the service's schema). */
  readonly schema: string;
  readonly db: Kysely<DB>;
  /** URL for one LISTEN connection that wakes waiting readers; without it readers poll. */
  readonly listenUrl?: string;
  /** How often a waiting request re-reads when no wake-up arrives. */
  readonly pollMs?: number;
}

/**
 * Serves the outbox as a long-polling feed (the default transport's producer side):
 * `GET /internal/v1/events?after=<position>&limit=<n>&waitMs=<ms>` answers as soon as events
 * after `after` are committed, or with an empty list once `waitMs` has passed.
 */
export async function registerEventFeed<DB>(app: HttpServer, options: EventFeedOptions<DB>): Promise<void> {
  const wake = new EventEmitter();
  wake.setMaxListeners(0);
  const listener = options.listenUrl ? await listen(options.listenUrl, outboxChannel(options.schema), () => wake.emit('outbox')) : undefined;
  app.addHook('onClose', async () => listener?.end());
  // Waiting readers answer (empty) at once when the server closes, instead of holding it open.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    wake.emit('outbox');
  });
  const pollMs = options.pollMs ?? 250;

  app.get(
    '/internal/v1/events',
    {
      schema: {
        hide: true,
        querystring: Type.Object({
          after: Type.Optional(Type.String({ maxLength: 48 })),
          limit: Type.Integer({ minimum: 1, maximum: 1000, default: 500 }),
          waitMs: Type.Integer({ minimum: 0, maximum: 30_000, default: 0 }),
        }),
      },
    },
    async (request) => {
      const after = request.query.after ? parsePosition(request.query.after) : undefined;
      const read = () => readOutbox(options.db, options.source, { after, limit: request.query.limit });
      const deadline = Date.now() + request.query.waitMs;
      let events = await read();
      while (events.length === 0 && Date.now() < deadline && !request.raw.destroyed && !closing) {
        await nextWake(wake, Math.min(pollMs, deadline - Date.now()));
        events = await read();
      }
      return { events };
    },
  );
}

function nextWake(wake: EventEmitter, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      wake.off('outbox', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    wake.once('outbox', done);
  });
}

// A dedicated connection for LISTEN; if it drops, readers fall back to polling until it is back.
async function listen(url: string, channel: string, onNotify: () => void): Promise<{ end(): Promise<void> }> {
  let client: pg.Client | undefined;
  let closed = false;
  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url, application_name: 'event-feed-listener' });
    next.on('notification', onNotify);
    next.on('error', () => {
      if (!closed) setTimeout(() => void connect().catch(() => undefined), 1_000);
    });
    await next.connect();
    await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    client = next;
  };
  await connect();
  return {
    async end() {
      closed = true;
      await client?.end().catch(() => undefined);
    },
  };
}
