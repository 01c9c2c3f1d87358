import { sql, type Kysely, type Transaction } from 'kysely';
import type { SubscriptionMode } from '@archipelago/registry';
import { isConnectionError, isTransactionConflict } from '../db.ts';
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

/** Applies events, oldest first, to this instance alone (a cache, sockets); throw to retry. */
export type BroadcastHandler = (events: readonly EventEnvelope[]) => Promise<void>;

interface CommonConsumerOptions {
  /** Unique name of this consumer, e.g. `core.lookups.masterdata`; keys its cursor. */
  readonly name: string;
  /** Where the events come from: `transport.subscribe({ source, group: name, mode })`, of the same mode. */
  readonly subscription: Subscription;
  readonly batchSize?: number;
  /** Attempts per event before it is dead-lettered (group) or skipped (broadcast). */
  readonly maxAttempts?: number;
  readonly backoffMs?: (attempt: number) => number;
  readonly waitMs?: number;
  readonly onError?: (error: unknown, context: { event?: EventEnvelope; attempt?: number }) => void;
  /**
   * Resynchronises when the producer no longer keeps the events after the position (retention);
   * the consumer then continues after the pruned position. Without it, the consumer stops
   * advancing and reports the gap through `onError` until someone acts.
   */
  readonly onGap?: (prunedThrough: string) => Promise<void>;
}

/**
 * A group subscription (the default): one stored cursor per name, moved by compare-and-swap in
 * the transaction that applies the events, so across all instances each event takes effect once.
 */
export interface GroupConsumerOptions<DB> extends CommonConsumerOptions {
  readonly mode?: 'group';
  readonly db: Kysely<DB>;
  readonly handle: EventHandler<DB>;
}

/**
 * A broadcast subscription: every instance applies every event committed after it started, for
 * per-instance effects (dropping a cache entry). No cursor is stored: the position lives in
 * memory, a restarted instance starts at "now", and an event that keeps failing is skipped
 * (reported through `onError`), not dead-lettered.
 */
export interface BroadcastConsumerOptions extends CommonConsumerOptions {
  readonly mode: 'broadcast';
  readonly handle: BroadcastHandler;
}

export type ConsumerOptions<DB> = GroupConsumerOptions<DB> | BroadcastConsumerOptions;

export interface ConsumerStats {
  readonly mode: SubscriptionMode;
  processed: number;
  failedAttempts: number;
  deadLettered: number;
  /** Events a broadcast consumer gave up on after `maxAttempts` (a group dead-letters them instead). */
  skipped: number;
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
   * (keeping it) when it fails again. False when there is no such dead letter (always, for a broadcast).
   */
  replay(deadLetterId: string): Promise<boolean>;
  stop(): Promise<void>;
}

const defaultBackoff = (attempt: number) => Math.min(100 * 2 ** (attempt - 1), 5_000);

/** Another instance of the same consumer committed first; this one reloads its cursor. */
class CursorMoved extends Error {}

// The stored position of a consumer that has applied nothing yet.
const START = '';

/** Where a consumer keeps its position and what applying, dead-lettering and replaying mean for it. */
interface PositionKeeping {
  /** The position to continue from (reloaded after another instance moved the cursor). */
  load(): Promise<string | undefined>;
  /** Applies events and records the position after them; `from` is where they follow. */
  apply(events: readonly EventEnvelope[], from: string | undefined): Promise<void>;
  /** Gives up on an event after its attempts: dead-letters it (group), or not (broadcast); true if it was kept. */
  giveUp(event: EventEnvelope, error: unknown, attempts: number, from: string | undefined): Promise<boolean>;
  /** Moves past pruned events. */
  skipTo(position: string, from: string | undefined): Promise<void>;
  replay(id: string): Promise<boolean>;
}

// The group's cursor in the consumer's database, moved by compare-and-swap: only from where this
// instance read it, so two instances of one consumer never both apply a batch (the later commit
// finds the cursor moved).
function storedCursor<DB>(name: string, db: Kysely<DB>, handle: EventHandler<DB>): PositionKeeping {
  const save = async (trx: Transaction<DB>, position: string, from: string | undefined) => {
    const result = await sql`UPDATE event_cursors SET position = ${position}, updated_at = now()
        WHERE consumer = ${name} AND position = ${from ?? START}`.execute(trx);
    if (result.numAffectedRows !== 1n) throw new CursorMoved(`${name}'s cursor was moved by another instance`);
  };
  return {
    async load() {
      await sql`INSERT INTO event_cursors (consumer, position) VALUES (${name}, ${START}) ON CONFLICT (consumer) DO NOTHING`.execute(db);
      const cursor = await sql<{ position: string }>`SELECT position FROM event_cursors WHERE consumer = ${name}`.execute(db);
      return cursor.rows[0]!.position || undefined;
    },
    apply: (events, from) =>
      db.transaction().execute(async (trx) => {
        await handle(trx, events);
        await save(trx, events.at(-1)!.position, from);
      }),
    async giveUp(event, error, attempts, from) {
      await db.transaction().execute(async (trx) => {
        await sql`INSERT INTO dead_letters (id, consumer, type, position, envelope, error, attempts)
                  VALUES (${event.id}, ${name}, ${event.type}, ${event.position}, ${JSON.stringify(event)}::jsonb, ${String((error as Error).message ?? error)}, ${attempts})
                  ON CONFLICT (id) DO NOTHING`.execute(trx);
        await save(trx, event.position, from);
      });
      return true;
    },
    skipTo: (position, from) => db.transaction().execute((trx) => save(trx, position, from)),
    replay: (id) =>
      db.transaction().execute(async (trx) => {
        const letter = await sql<{ envelope: EventEnvelope }>`
          SELECT envelope FROM dead_letters WHERE id = ${id} AND consumer = ${name} FOR UPDATE`.execute(trx);
        if (!letter.rows[0]) return false;
        await handle(trx, [letter.rows[0].envelope]);
        await sql`DELETE FROM dead_letters WHERE id = ${id}`.execute(trx);
        return true;
      }),
  };
}

// A broadcast's position is this process's memory: nothing to load, store or replay.
function positionInMemory(handle: BroadcastHandler): PositionKeeping {
  return {
    load: async () => undefined,
    apply: (events) => handle(events),
    giveUp: async () => false,
    skipTo: async () => undefined,
    replay: async () => false,
  };
}

/**
 * Follows a producer's event feed. A group consumer (the default) applies each event exactly
 * once in effect across all its instances: the handler and the new cursor position commit in one
 * transaction of the consumer's database; delivery is at least once (a crash before commit
 * replays the batch), so effects stay idempotent by construction, and an event that keeps failing
 * goes to `dead_letters` after `maxAttempts`. A broadcast consumer applies every event committed
 * after it started in every instance, keeping its position in memory.
 *
 * @example
 * startConsumer({ name: 'core.lookups.masterdata', subscription: transport.subscribe({ source: 'masterdata', group: 'core.lookups.masterdata' }), db, handle });
 * startConsumer({ mode: 'broadcast', name: 'core.iam-changes', subscription: transport.subscribe({ source: 'iam', group: 'core.iam-changes', mode: 'broadcast' }), handle: async (events) => cache.drop(events) });
 */
export function startConsumer<DB>(options: ConsumerOptions<DB>): Consumer {
  const mode = options.mode ?? 'group';
  if (options.subscription.mode !== mode) {
    throw new Error(`${options.name} is a ${mode} consumer but its subscription is a ${options.subscription.mode}; subscribe with mode: '${mode}'`);
  }
  const stats: ConsumerStats = { mode, processed: 0, failedAttempts: 0, deadLettered: 0, skipped: 0, lastLagMs: undefined, position: undefined };
  const abort = new AbortController();
  const maxAttempts = options.maxAttempts ?? 5;
  const backoff = options.backoffMs ?? defaultBackoff;
  const keeping = options.mode === 'broadcast' ? positionInMemory(options.handle) : storedCursor(options.name, options.db, options.handle);

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
          await keeping.apply([event], stats.position);
          await acknowledge([event]);
          break;
        } catch (error) {
          // Not the event's fault (a lost connection, a deadlock): the loop backs off and resumes from the last commit.
          if (error instanceof CursorMoved || isConnectionError(error) || isTransactionConflict(error)) throw error;
          stats.failedAttempts++;
          options.onError?.(error, { event, attempt });
          if (attempt >= maxAttempts) {
            if (await keeping.giveUp(event, error, attempt, stats.position)) stats.deadLettered++;
            else stats.skipped++;
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

  // Fetches what follows the position and applies it (or, when the producer pruned it, resynchronises).
  const advance = async () => {
    let events: EventEnvelope[];
    try {
      events = await options.subscription.receive(stats.position, { limit: options.batchSize ?? 500, waitMs: options.waitMs ?? 20_000, signal: abort.signal });
    } catch (error) {
      if (!(error instanceof EventsPruned && options.onGap)) throw error;
      await options.onGap(error.prunedThrough);
      await keeping.skipTo(error.prunedThrough, stats.position);
      stats.position = error.prunedThrough;
      return;
    }
    if (events.length === 0 || abort.signal.aborted) return;
    try {
      await keeping.apply(events, stats.position);
      await acknowledge(events);
    } catch (error) {
      if (error instanceof CursorMoved) throw error;
      options.onError?.(error, {});
      await applyOneByOne(events);
    }
  };

  // One round: (first) load the position, then advance. Throws on any failure.
  let positionLoaded = false;
  const round = async () => {
    if (!positionLoaded) {
      stats.position = await keeping.load();
      positionLoaded = true;
    }
    try {
      await advance();
    } catch (error) {
      if (!(error instanceof CursorMoved)) throw error;
      positionLoaded = false; // another instance got there first: continue from where it is
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
    replay: (id) => keeping.replay(id),
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
