import type { Channel, ConsumeMessage } from 'amqplib';
import type { SubscriptionMode } from '@archipelago/registry';
import type { EventEnvelope } from '../envelope.ts';
import { isBefore, parsePosition, type OutboxPosition } from '../outbox.ts';
import type { Subscription } from '../transport.ts';
import type { SharedConnection } from './connection.ts';
import { declareBroadcastQueue, declareGroupQueue } from './topology.ts';

/** Within the 100–300 the brief for brokers suggests: enough to keep a batch coming, little to redeliver. */
export const PREFETCH = 300;
/**
 * A batch takes events of at most half the prefetch's messages: the broker keeps delivering into
 * the other half while the consumer commits, instead of waiting for its acks (a quorum queue
 * settles them through its log before it sends more).
 */
export const BATCH_LIMIT = PREFETCH / 2;

/** One message: the events the relay put in it, in feed order, with their positions. */
interface Delivery {
  readonly message: ConsumeMessage;
  readonly events: readonly { readonly event: EventEnvelope; readonly position: OutboxPosition }[];
  /** Its last event's position: the message is done once the consumer's position reached it. */
  readonly last: OutboxPosition;
}

/** Reads the producer's own feed after a position (`after` undefined: from the start). */
export type CatchUp = (after: string | undefined, options: { limit: number; waitMs: number; signal: AbortSignal }) => Promise<EventEnvelope[]>;

/** A subscription through the broker; `live` once it has caught up and takes deliveries from its queue. */
export interface BrokerSubscription extends Subscription {
  readonly live: boolean;
}

/**
 * A subscription to a source's events through RabbitMQ. Every (re)opened channel first catches
 * up from the producer's feed, after the consumer's position, until it reaches the queue's first
 * delivery or the feed's end (the queue holds everything relayed since it was bound, the relay
 * publishing in commit order); a group's first start thus reads the backlog from the start.
 * Then it takes deliveries in order, each message one event or several (the relay's
 * `messageBatches`). The relay publishes in commit order, so an event at or before the
 * consumer's position is one it applied already (a republished or redelivered one): it is
 * acknowledged and dropped, and the consumer's position, committed in its own transaction, stays
 * its exactly-once guard. A message is acknowledged (multiple) once `acknowledge` was called for
 * its last event, i.e. after the consumer committed it; unacknowledged ones go back to the queue
 * when the channel goes (the events of one applied already are dropped then).
 */
export function brokerSubscription(options: { connection: SharedConnection; source: string; group: string; mode: SubscriptionMode; catchUp: CatchUp; onError?: (error: unknown) => void }): BrokerSubscription {
  const { connection, source, group, mode } = options;
  let model: ReturnType<SharedConnection['acquire']> | undefined;
  let opening: Promise<Channel> | undefined;
  let live: Channel | undefined;
  let closed = false;
  let caughtUp = false;
  // Unacknowledged deliveries of the live channel, in delivery order.
  let pending: Delivery[] = [];
  let notify = () => undefined as void;

  const open = async (): Promise<Channel> => {
    model ??= connection.acquire();
    const next = await (await model).createChannel();
    const lost = () => {
      if (live !== next) return;
      live = undefined;
      opening = undefined;
      pending = [];
      caughtUp = false;
      notify();
    };
    next.on('error', (error: unknown) => options.onError?.(error));
    next.on('close', lost);
    await next.prefetch(PREFETCH);
    const queue = mode === 'group' ? await declareGroupQueue(next, source, group) : await declareBroadcastQueue(next, source);
    live = next;
    await next.consume(queue, (message) => {
      if (!message) return void next.close().catch(() => undefined); // cancelled by the broker (queue deleted): reopen
      const events = decode(message);
      if (!events) return next.nack(message, false, false); // unreadable: to the dead-letter queue
      pending.push({ message, events, last: events.at(-1)!.position });
      notify();
    }, { noAck: false });
    return next;
  };

  const arrival = (waitMs: number, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      signal.addEventListener('abort', done, { once: true });
      notify = done;
    });

  return {
    mode,
    get live() {
      return caughtUp && live !== undefined;
    },
    async receive(after, receive) {
      if (closed) return [];
      opening ??= open().catch((error: unknown) => {
        opening = undefined;
        throw error;
      });
      const current = await opening;
      // A broadcast's first queue starts at "now"; it has nothing to catch up on.
      if (!caughtUp && mode === 'broadcast' && after === undefined) caughtUp = true;
      if (!caughtUp) {
        // The queue holds everything from its first delivery on: read the feed up to it, or to its end.
        const events = await options.catchUp(after, { ...receive, waitMs: 0 });
        const first = pending[0]?.events[0]!.position;
        const before = first ? events.filter((event) => isBefore(parsePosition(event.position), first)) : events;
        if (before.length < events.length || events.length === 0) caughtUp = true;
        if (before.length > 0) return before;
      }
      let from = after ? parsePosition(after) : undefined;
      const batch: EventEnvelope[] = [];
      const collect = () => {
        // A message may be taken in part (the rest comes in the next batch, after the position).
        let messages = 0;
        for (const delivery of pending) {
          if (batch.length >= receive.limit || messages >= BATCH_LIMIT) break;
          if (from && !isBefore(from, delivery.last)) continue; // applied already
          messages++;
          for (const { event, position } of delivery.events) {
            if (batch.length >= receive.limit) break;
            if (from && !isBefore(from, position)) continue;
            batch.push(event);
            from = position;
          }
        }
      };
      collect();
      if (batch.length === 0 && !receive.signal.aborted) {
        await arrival(receive.waitMs, receive.signal);
        if (live === current) collect();
      }
      // Only duplicates so far: acknowledge them now, so they do not hold the prefetch.
      if (batch.length === 0 && pending.length > 0 && live === current) {
        current.ack(pending.at(-1)!.message, true);
        pending = [];
      }
      return batch;
    },
    async acknowledge(events) {
      const last = events.at(-1);
      if (!last || !live) return; // the channel went: the broker redelivers
      // The messages the consumer's position now covers, from the first: applied, or copies of applied ones.
      const through = parsePosition(last.position);
      let done = 0;
      while (done < pending.length && !isBefore(through, pending[done]!.last)) done++;
      if (done === 0) return; // from the feed, or part of a message
      live.ack(pending[done - 1]!.message, true);
      pending = pending.slice(done);
    },
    async close() {
      closed = true;
      notify();
      const current = await opening?.catch(() => undefined);
      live = undefined;
      opening = undefined;
      await current?.close().catch(() => undefined);
      if (model) await connection.release();
    },
  };
}

/** A message's events: one envelope, or a JSON array of them in feed order (undefined if unreadable). */
function decode(message: ConsumeMessage): Delivery['events'] | undefined {
  try {
    const body = JSON.parse(message.content.toString('utf8')) as EventEnvelope | EventEnvelope[];
    const events = Array.isArray(body) ? body : [body];
    if (events.length === 0 || !events.every((event) => typeof event?.id === 'string' && typeof event.type === 'string')) return undefined;
    const decoded = events.map((event) => ({ event, position: parsePosition(event.position) }));
    return decoded.every((entry, i) => i === 0 || isBefore(decoded[i - 1]!.position, entry.position)) ? decoded : undefined;
  } catch {
    return undefined;
  }
}
