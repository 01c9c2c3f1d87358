import { EventEmitter } from 'node:events';
import type { Kysely } from 'kysely';
import pg from 'pg';
import Type from 'typebox';
import type { HttpServer } from '../http.ts';
import { AppError } from '../errors.ts';
import { feedReaders } from '../internal-auth/guard.ts';
import { formatPosition, isBefore, outboxChannel, outboxHead, parsePosition, prunedThrough, readOutboxPage } from './outbox.ts';

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

// A reader whose events are held back re-reads after 2, 4, 8, 8 … ms (no NOTIFY tells when the
// older transaction ends; a commit waiting for its WAL flush holds the rows after it back for that long).
const HELD_BACK_FIRST_MS = 2;
const HELD_BACK_MAX_MS = 8;

/**
 * Serves the outbox as a long-polling feed (the default transport's producer side):
 * `GET /internal/v1/events?after=<position>&limit=<n>&waitMs=<ms>` answers as soon as events
 * after `after` are committed, or with an empty list once `waitMs` has passed; a reader whose
 * events were pruned (the `outbox.prune` job, `pruneOutboxJob`) gets a 410 instead of a gap.
 * `GET /internal/v1/events/head` gives the position a broadcast subscription starts after.
 * Needs the outbox (`createOutboxTableV1`) and its retention mark (`createOutboxRetentionV1`).
 */
export async function registerEventFeed<DB>(app: HttpServer, options: EventFeedOptions<DB>): Promise<void> {
  const wake = wakeUps();
  const listener = options.listenUrl ? await listen(options.listenUrl, outboxChannel(options.schema), wake.ring) : undefined;
  app.addHook('onClose', async () => listener?.end());
  // Waiting readers answer (empty) at once when the server closes, instead of holding it open.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    wake.ring();
  });
  const pollMs = options.pollMs ?? 250;

  app.get(
    '/internal/v1/events',
    {
      // Only the source's consumers in the registry (and the operator) read its events.
      config: { callers: feedReaders(options.source) },
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
      // Events the consumer has not seen were pruned: say so rather than skip them silently.
      const refusePruned = async () => {
        const pruned = await prunedThrough(options.db);
        if (pruned && (!after || isBefore(after, pruned))) {
          throw new AppError('GONE', `Events up to ${formatPosition(pruned)} were pruned (retention); resynchronise from the producer's export, then read after that position`, {
            fields: [{ field: 'after', message: 'is older than the oldest event kept', value: request.query.after ?? null }],
            extensions: { prunedThrough: formatPosition(pruned) },
          });
        }
      };
      await refusePruned();
      const read = () => readOutboxPage(options.db, options.source, { after, limit: request.query.limit });
      const deadline = Date.now() + request.query.waitMs;
      // Counted before each read: a NOTIFY that arrives while the read is in flight (its snapshot
      // may predate that commit) makes the next wait return at once instead of being lost.
      let rung = wake.count();
      let { events, heldBack } = await read();
      let heldFor = 0;
      while (events.length === 0 && Date.now() < deadline && !request.raw.destroyed && !closing) {
        // Committed events held back by an older transaction: no NOTIFY says when it ends, so look again soon.
        heldFor = heldBack ? Math.min(heldFor * 2 || HELD_BACK_FIRST_MS, HELD_BACK_MAX_MS, pollMs) : 0;
        await wake.after(rung, Math.min(heldBack ? heldFor : pollMs, deadline - Date.now()));
        rung = wake.count();
        ({ events, heldBack } = await read());
      }
      // Again after the read: a prune that committed between the first check and the read would
      // otherwise leave a gap the page does not show.
      await refusePruned();
      return { events };
    },
  );
  app.get('/internal/v1/events/head', { schema: { hide: true }, config: { callers: feedReaders(options.source) } }, async () => {
    const head = await outboxHead(options.db);
    return { position: head ? formatPosition(head) : null };
  });
}

// The outbox's NOTIFYs, counted, so that a reader can wait for one after a given count: a
// wake-up that came while it was reading is kept (as the RabbitMQ relay's doorbell keeps its own).
function wakeUps(): { ring: () => void; count: () => number; after: (count: number, ms: number) => Promise<void> } {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  let rings = 0;
  return {
    ring: () => {
      rings++;
      emitter.emit('ring');
    },
    count: () => rings,
    after(count, ms) {
      if (rings !== count) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          emitter.off('ring', done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        emitter.once('ring', done);
      });
    },
  };
}

// A dedicated connection for LISTEN; if it drops, readers fall back to polling while it is
// re-established (with backoff, for as long as the database is away).
async function listen(url: string, channel: string, onNotify: () => void): Promise<{ end(): Promise<void> }> {
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const scheduleConnect = (failures: number) => {
    if (closed) return;
    retry = setTimeout(() => void connect().catch(() => scheduleConnect(failures + 1)), Math.min(250 * 2 ** failures, 5_000));
    retry.unref();
  };
  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url, application_name: 'event-feed-listener', connectionTimeoutMillis: 5_000 });
    let connected = false;
    let lost = false;
    const onLost = () => {
      if (lost || !connected) return; // before it is connected, connect() rejects and its caller retries
      lost = true;
      if (client === next) client = undefined;
      void next.end().catch(() => undefined);
      scheduleConnect(0);
    };
    next.on('notification', onNotify);
    next.on('error', onLost);
    next.on('end', onLost);
    try {
      await next.connect();
      await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (error) {
      await next.end().catch(() => undefined);
      throw error;
    }
    if (closed) return void (await next.end().catch(() => undefined));
    connected = true;
    client = next;
    onNotify(); // wake readers: they may have missed notifications while it was down
  };
  await connect();
  return {
    async end() {
      closed = true;
      clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}
