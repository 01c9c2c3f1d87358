import type { ConfirmChannel } from 'amqplib';
import pg from 'pg';
import { formatPosition, parsePosition, readOutboxPage, type OutboxPosition } from '../outbox.ts';
import type { EventEnvelope } from '../envelope.ts';
import type { Producer } from '../transport.ts';
import type { SharedConnection } from './connection.ts';
import { listenForOutbox, markRelayed, relayedThrough, tryLeadRelay } from './relay-marker.ts';
import { declareExchanges, EVENTS_EXCHANGE, routingKey } from './topology.ts';

export interface RelayOptions {
  readonly producer: Omit<Producer, 'app' | 'listenUrl'> & { readonly listenUrl: string };
  readonly connection: SharedConnection;
  /** Key of the mark in `outbox_relayed`. */
  readonly transport?: string;
  /** Events published and not yet confirmed, at most. */
  readonly window?: number;
  readonly batchSize?: number;
  /** The mark is written at most this often (a crash republishes what was confirmed since; consumers drop it). */
  readonly markEveryMs?: number;
  /** How often a caught-up leader reads without a NOTIFY (a safety net: every commit of an event notifies). */
  readonly idlePollMs?: number;
  /** How often a follower tries for the lock, and the first backoff after a failure. */
  readonly retryMs?: number;
  readonly onError?: (error: unknown) => void;
}

export interface RelayStats {
  leader: boolean;
  /** Events published and confirmed (several to a message: `messageBatches`). */
  published: number;
  confirmed: number;
  /** AMQP messages published. */
  messages: number;
  /** Events in publishes the broker refused (basic.nack) or that went with a lost channel; none of them, nor anything after, was marked. */
  unconfirmed: number;
  relayedThrough: string | undefined;
}

export interface Relay {
  readonly stats: Readonly<RelayStats>;
  stop(): Promise<void>;
}

/**
 * Hands a producer's committed outbox rows to the broker, in commit order (`readOutbox`'s rule),
 * from whichever instance holds the producer's relay lock, several events to a message
 * (`messageBatches`). Up to `window` events are in flight on a confirm channel; the mark in
 * `outbox_relayed` moves only over the prefix the broker has confirmed, so a crash, a lost connection or a refusal republishes from there (consumers drop
 * what they already applied) and never skips an event.
 */
export function startRelay(options: RelayOptions): Relay {
  const { producer, connection } = options;
  const transport = options.transport ?? 'rabbitmq';
  const window = options.window ?? 1_000;
  const batchSize = options.batchSize ?? 500;
  const retryMs = options.retryMs ?? 1_000;
  const markEveryMs = options.markEveryMs ?? 100;
  const idlePollMs = options.idlePollMs ?? 250;
  const stats: RelayStats = { leader: false, published: 0, confirmed: 0, messages: 0, unconfirmed: 0, relayedThrough: undefined };
  const abort = new AbortController();
  // New rows (the outbox's NOTIFY) and room in the window (a confirm), each kept until waited for.
  const rows = doorbell(abort.signal);
  const room = doorbell(abort.signal);

  // Publishes from the mark until stopped; throws on a refusal or a failed mark.
  const pump = async (channel: ConfirmChannel, lost: Promise<never>) => {
    let marker = await relayedThrough(producer.db, transport);
    stats.relayedThrough = marker && formatPosition(marker);
    let readHead = marker;
    const inFlight: { position: OutboxPosition; events: number; confirmed: boolean }[] = [];
    let inFlightEvents = 0;
    let failure: Error | undefined;
    let heldFor = 0;
    const marks = markWriter(async () => {
      const position = marker!;
      await markRelayed(producer.db, transport, position);
      stats.relayedThrough = formatPosition(position);
    }, markEveryMs, (error) => void (failure ??= error instanceof Error ? error : new Error(String(error))));
    // The confirmed prefix is relayed; a confirm for a later message waits for those before it.
    const settle = () => {
      let last: OutboxPosition | undefined;
      while (inFlight[0]?.confirmed) {
        const entry = inFlight.shift()!;
        inFlightEvents -= entry.events;
        last = entry.position;
      }
      if (last) {
        marker = last;
        marks.due();
      }
      room.ring();
    };
    try {
      while (!abort.signal.aborted) {
        if (failure) throw failure;
        const free = Math.min(batchSize, window - inFlightEvents);
        if (free <= 0) {
          await Promise.race([room.wait(250), lost]);
          continue;
        }
        const { events, heldBack } = await readOutboxPage(producer.db, producer.source, { after: readHead, limit: free });
        for (const { events: batch, body } of messageBatches(events)) {
          const last = batch.at(-1)!;
          const entry = { position: parsePosition(last.position), events: batch.length, confirmed: false };
          inFlight.push(entry);
          inFlightEvents += batch.length;
          stats.published += batch.length;
          stats.messages++;
          const properties = { persistent: true, messageId: batch[0]!.id, type: batch[0]!.type, contentType: 'application/json', headers: { position: last.position, events: batch.length } };
          const flowing = channel.publish(EVENTS_EXCHANGE, routingKey(producer.source, batch[0]!.type), body, properties, (error: Error | null) => {
            if (error) {
              stats.unconfirmed += batch.length;
              failure ??= new Error(`the broker did not confirm events ${batch[0]!.id}…${last.id} of ${producer.source}: ${error.message}`);
              return room.ring();
            }
            stats.confirmed += batch.length;
            entry.confirmed = true;
            settle();
          });
          if (!flowing) await Promise.race([new Promise((resolve) => channel.once('drain', resolve)), lost]);
        }
        if (events.length > 0) readHead = parsePosition(events.at(-1)!.position);
        if (events.length === free) continue;
        // Caught up: the next commit's NOTIFY rings. Committed rows held back behind an older
        // transaction (of any database of the cluster) get none when that one ends: look again
        // soon, and less often the longer it lasts (a long transaction elsewhere must not turn
        // every relay into a busy poll).
        heldFor = heldBack ? Math.min(heldFor * 2 || HELD_BACK_FIRST_MS, HELD_BACK_MAX_MS) : 0;
        await Promise.race([rows.wait(heldBack ? heldFor : idlePollMs), lost]);
      }
    } finally {
      await marks.flush();
    }
  };

  // One term as leader, if the lock is free: until stopped or something fails.
  const lead = async (): Promise<boolean> => {
    const client = new pg.Client({ connectionString: producer.listenUrl, application_name: `${producer.source}-relay`, connectionTimeoutMillis: 5_000 });
    let channel: ConfirmChannel | undefined;
    let acquired = false;
    let lose = (_: Error) => undefined as void;
    const lost = new Promise<never>((_, reject) => (lose = reject));
    lost.catch(() => undefined);
    client.on('error', lose);
    client.on('end', () => lose(new Error('the relay lock session ended')));
    await client.connect();
    try {
      if (!(await tryLeadRelay(client, producer.source))) return false;
      stats.leader = true;
      await listenForOutbox(client, producer.schema, () => rows.ring());
      acquired = true;
      channel = await (await connection.acquire()).createConfirmChannel();
      channel.on('error', lose);
      channel.on('close', () => lose(new Error('the relay channel closed')));
      await declareExchanges(channel);
      await Promise.race([pump(channel, lost), lost]);
      return true;
    } finally {
      stats.leader = false;
      await channel?.close().catch(() => undefined);
      if (acquired) await connection.release();
      await client.end().catch(() => undefined);
    }
  };

  const running = (async () => {
    let failures = 0;
    while (!abort.signal.aborted) {
      try {
        const led = await lead();
        failures = 0;
        if (!led) await rows.wait(retryMs);
      } catch (error) {
        if (abort.signal.aborted) break;
        options.onError?.(error);
        await rows.wait(Math.min(retryMs * 2 ** failures++, 5_000));
      }
    }
  })();

  return {
    stats,
    async stop() {
      abort.abort();
      await running;
    },
  };
}

/** Events in one message, at most, and the size a message grows to before it takes no more. */
export const MESSAGE_EVENTS = 100;
const MESSAGE_BYTES = 256 * 1024;

/**
 * Groups what one read returned into messages: runs of consecutive events of one type (the
 * routing key names it), up to `MESSAGE_EVENTS` and about `MESSAGE_BYTES` each, in feed order.
 * The broker's work (its log, its confirms, its deliveries) goes by message, not by event. A
 * message of one event is that event's envelope, of several a JSON array of them.
 */
export function messageBatches(events: readonly EventEnvelope[]): { events: EventEnvelope[]; body: Buffer }[] {
  const batches: { events: EventEnvelope[]; body: Buffer }[] = [];
  let current: EventEnvelope[] = [];
  let texts: string[] = [];
  let bytes = 0;
  const close = () => {
    batches.push({ events: current, body: Buffer.from(texts.length === 1 ? texts[0]! : `[${texts.join(',')}]`) });
    current = [];
    texts = [];
    bytes = 0;
  };
  for (const event of events) {
    const text = JSON.stringify(event);
    if (current.length > 0 && (current[0]!.type !== event.type || current.length >= MESSAGE_EVENTS || bytes + text.length > MESSAGE_BYTES)) close();
    current.push(event);
    texts.push(text);
    bytes += text.length;
  }
  if (current.length > 0) close();
  return batches;
}

// How soon a caught-up relay looks again without a NOTIFY while rows are held back, doubling up to the most.
const HELD_BACK_FIRST_MS = 2;
const HELD_BACK_MAX_MS = 50;

/** A wake-up that is kept when it comes while nobody waits: the next wait returns at once (true). */
function doorbell(signal: AbortSignal): { ring(): void; wait(ms: number): Promise<boolean> } {
  let rung = false;
  let answer: (() => void) | undefined;
  return {
    ring() {
      rung = true;
      answer?.();
    },
    wait(ms) {
      if (rung || signal.aborted) {
        const was = rung;
        rung = false;
        return Promise.resolve(was);
      }
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          answer = undefined;
          const was = rung;
          rung = false;
          resolve(was);
        };
        const timer = setTimeout(done, ms);
        answer = done;
        signal.addEventListener('abort', done, { once: true });
      });
    },
  };
}

/**
 * Writes the relay's mark when `due`, at most once per `everyMs` (confirms of a busy relay come
 * every few milliseconds; each mark is a commit): the last due write always follows, and `flush`
 * writes what is due at once and waits for it.
 */
function markWriter(write: () => Promise<void>, everyMs: number, onError: (error: unknown) => void): { due(): void; flush(): Promise<void> } {
  let pending = false;
  let writing: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let lastAt = -Infinity;
  const run = () => {
    clearTimeout(timer);
    timer = undefined;
    if (writing || !pending) return;
    pending = false;
    lastAt = performance.now();
    writing = write()
      .catch(onError)
      .finally(() => {
        writing = undefined;
        if (pending) schedule();
      });
  };
  const schedule = () => {
    if (writing || timer) return;
    timer = setTimeout(run, Math.max(0, lastAt + everyMs - performance.now()));
  };
  return {
    due() {
      pending = true;
      schedule();
    },
    async flush() {
      await writing;
      run();
      await writing;
    },
  };
}
