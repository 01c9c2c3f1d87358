import { sql, type Kysely, type Transaction } from 'kysely';
import type { EventEnvelope } from './envelope.ts';
import { EventsPruned, type Subscription } from './transport.ts';

/**
 * Creates the consumer's bookkeeping (version 1) in the current schema: the last applied
 * position per source, and the dead letters. Call it from a service migration.
 */
export async function createConsumerTablesV1(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE event_cursors (
      consumer   text PRIMARY KEY,
      position   text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TABLE dead_letters (
      id          uuid PRIMARY KEY,
      consumer    text NOT NULL,
      type        text NOT NULL,
      position    text NOT NULL,
      envelope    jsonb NOT NULL,
      error       text NOT NULL,
      attempts    integer NOT NULL,
      failed_at   timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function dropConsumerTablesV1(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE dead_letters`.execute(db);
  await sql`DROP TABLE event_cursors`.execute(db);
}

/**
 * Applies events, oldest first, inside the consumer's transaction; throw to retry. A batch can be
 * applied with few statements; after a failure the consumer retries the events one at a time.
 */
export type EventHandler<DB> = (trx: Transaction<DB>, events: readonly EventEnvelope[]) => Promise<void>;

export interface ConsumerOptions<DB> {
  /** Unique name of this consumer, e.g. `core.lookups.masterdata`; keys its cursor. */
  readonly name: string;
  /** Where the events come from: `transport.subscribe({ source, group: name })`. */
  readonly subscription: Subscription;
  readonly db: Kysely<DB>;
  readonly handle: EventHandler<DB>;
  readonly batchSize?: number;
  /** Attempts per event before it is dead-lettered. */
  readonly maxAttempts?: number;
  readonly backoffMs?: (attempt: number) => number;
  readonly waitMs?: number;
  readonly onError?: (error: unknown, context: { event?: EventEnvelope; attempt?: number }) => void;
  /**
   * Resynchronises when the producer no longer keeps the events after the cursor (retention);
   * the consumer then continues after the pruned position. Without it, the consumer stops
   * advancing and reports the gap through `onError` until someone acts.
   */
  readonly onGap?: (prunedThrough: string) => Promise<void>;
}

export interface ConsumerStats {
  processed: number;
  failedAttempts: number;
  deadLettered: number;
  /** Milliseconds between the newest applied event's occurrence and its application. */
  lastLagMs: number | undefined;
  position: string | undefined;
}

/** A running consumer of one producer's feed. */
export interface Consumer {
  readonly name: string;
  readonly stats: Readonly<ConsumerStats>;
  /**
   * Applies a dead letter of this consumer again and removes it, in one transaction; throws
   * (keeping it) when it fails again. False when there is no such dead letter.
   */
  replay(deadLetterId: string): Promise<boolean>;
  stop(): Promise<void>;
}

const defaultBackoff = (attempt: number) => Math.min(100 * 2 ** (attempt - 1), 5_000);

/** Another instance of the same consumer committed first; this one reloads its cursor. */
class CursorMoved extends Error {}

// The stored position of a consumer that has applied nothing yet.
const START = '';

/**
 * Follows a producer's event feed and applies each event exactly once in effect: the handler
 * and the new cursor position commit in one transaction of the consumer's database. Delivery is
 * at least once (a crash before commit replays the batch), so effects stay idempotent by
 * construction. An event that keeps failing goes to `dead_letters` after `maxAttempts`.
 */
export function startConsumer<DB>(options: ConsumerOptions<DB>): Consumer {
  const stats: ConsumerStats = { processed: 0, failedAttempts: 0, deadLettered: 0, lastLagMs: undefined, position: undefined };
  const abort = new AbortController();
  const maxAttempts = options.maxAttempts ?? 5;
  const backoff = options.backoffMs ?? defaultBackoff;
  const db = options.db;

  // Compare-and-swap: the cursor moves only from where this instance read it, so two instances
  // of one consumer never both apply a batch (the later commit finds the cursor moved).
  const saveCursor = async (trx: Transaction<DB>, position: string) => {
    const result = await sql`UPDATE event_cursors SET position = ${position}, updated_at = now()
        WHERE consumer = ${options.name} AND position = ${stats.position ?? START}`.execute(trx);
    if (result.numAffectedRows !== 1n) throw new CursorMoved(`${options.name}'s cursor was moved by another instance`);
  };

  const applyBatch = (events: readonly EventEnvelope[]) =>
    db.transaction().execute(async (trx) => {
      await options.handle(trx, events);
      await saveCursor(trx, events.at(-1)!.position);
    });
  const acknowledge = (events: readonly EventEnvelope[]) => {
    stats.processed += events.length;
    stats.position = events.at(-1)!.position;
    stats.lastLagMs = Date.now() - Date.parse(events.at(-1)!.occurredAt);
    return options.subscription.acknowledge(events);
  };

  // One event at a time, with retries, when a batch failed: isolates the poison event.
  const applyOneByOne = async (events: readonly EventEnvelope[]) => {
    for (const event of events) {
      for (let attempt = 1; ; attempt++) {
        try {
          await applyBatch([event]);
          await acknowledge([event]);
          break;
        } catch (error) {
          if (error instanceof CursorMoved) throw error;
          stats.failedAttempts++;
          options.onError?.(error, { event, attempt });
          if (attempt >= maxAttempts) {
            await db.transaction().execute(async (trx) => {
              await sql`INSERT INTO dead_letters (id, consumer, type, position, envelope, error, attempts)
                        VALUES (${event.id}, ${options.name}, ${event.type}, ${event.position}, ${JSON.stringify(event)}::jsonb, ${String((error as Error).message ?? error)}, ${attempt})
                        ON CONFLICT (id) DO NOTHING`.execute(trx);
              await saveCursor(trx, event.position);
            });
            stats.deadLettered++;
            stats.position = event.position;
            await options.subscription.acknowledge([event]);
            break;
          }
          await sleep(backoff(attempt), abort.signal);
          if (abort.signal.aborted) return;
        }
      }
    }
  };

  // Fetches what follows the cursor and applies it (or, when the producer pruned it, resynchronises).
  const advance = async () => {
    let events: EventEnvelope[];
    try {
      events = await options.subscription.receive(stats.position, { limit: options.batchSize ?? 500, waitMs: options.waitMs ?? 20_000, signal: abort.signal });
    } catch (error) {
      if (!(error instanceof EventsPruned && options.onGap)) throw error;
      await options.onGap(error.prunedThrough);
      await db.transaction().execute((trx) => saveCursor(trx, error.prunedThrough));
      stats.position = error.prunedThrough;
      return;
    }
    if (events.length === 0 || abort.signal.aborted) return;
    try {
      await applyBatch(events);
      await acknowledge(events);
    } catch (error) {
      if (error instanceof CursorMoved) throw error;
      options.onError?.(error, {});
      await applyOneByOne(events);
    }
  };

  // One round: (first) load the cursor, then advance. Throws on any failure.
  let cursorLoaded = false;
  const round = async () => {
    if (!cursorLoaded) {
      await sql`INSERT INTO event_cursors (consumer, position) VALUES (${options.name}, ${START}) ON CONFLICT (consumer) DO NOTHING`.execute(db);
      const cursor = await sql<{ position: string }>`SELECT position FROM event_cursors WHERE consumer = ${options.name}`.execute(db);
      stats.position = cursor.rows[0]!.position || undefined;
      cursorLoaded = true;
    }
    try {
      await advance();
    } catch (error) {
      if (!(error instanceof CursorMoved)) throw error;
      cursorLoaded = false; // another instance got there first: continue from where it is
    }
  };

  // The consumer outlives every failure (producer down, own database down, a dead letter that
  // cannot be written): it backs off and resumes from its last committed position.
  const loop = async () => {
    let failures = 0;
    while (!abort.signal.aborted) {
      try {
        await round();
        failures = 0;
      } catch (error) {
        if (abort.signal.aborted) break;
        options.onError?.(error, {});
        await sleep(backoff(++failures), abort.signal);
      }
    }
  };
  const running = loop().catch((error: unknown) => options.onError?.(error, {}));

  return {
    name: options.name,
    stats,
    replay: (id) =>
      db.transaction().execute(async (trx) => {
        const letter = await sql<{ envelope: EventEnvelope }>`
          SELECT envelope FROM dead_letters WHERE id = ${id} AND consumer = ${options.name} FOR UPDATE`.execute(trx);
        if (!letter.rows[0]) return false;
        await options.handle(trx, [letter.rows[0].envelope]);
        await sql`DELETE FROM dead_letters WHERE id = ${id}`.execute(trx);
        return true;
      }),
    async stop() {
      abort.abort();
      await running;
      await options.subscription.close();
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
