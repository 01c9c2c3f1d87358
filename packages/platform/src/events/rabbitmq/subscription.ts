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
 * A batch takes at most half the prefetch: the broker keeps delivering into the other half while
 * the consumer commits, instead of waiting for its acks (a quorum queue settles them through its
 * log before it sends more).
 */
export const BATCH_LIMIT = PREFETCH / 2;

interface Delivery {
  readonly message: ConsumeMessage;
  readonly event: EventEnvelope;
  readonly position: OutboxPosition;
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
 * Then it takes deliveries in order. The relay publishes in commit order, so an event at or
 * before the consumer's position is one it applied already (a republished or redelivered one):
 * it is acknowledged and dropped, and the consumer's position, committed in its own
 * transaction, stays its exactly-once guard. Deliveries are acknowledged (multiple) when
 * `acknowledge` is called, i.e. after the consumer committed; unacknowledged ones go back to the
 * queue when the channel goes.
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
      const event = decode(message);
      if (!event) return next.nack(message, false, false); // unreadable: to the dead-letter queue
      pending.push({ message, event, position: parsePosition(event.position) });
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
        const first = pending[0]?.position;
        const before = first ? events.filter((event) => isBefore(parsePosition(event.position), first)) : events;
        if (before.length < events.length || events.length === 0) caughtUp = true;
        if (before.length > 0) return before;
      }
      let from = after ? parsePosition(after) : undefined;
      const batch: EventEnvelope[] = [];
      const collect = () => {
        for (const delivery of pending) {
          if (batch.length >= Math.min(receive.limit, BATCH_LIMIT)) break;
          if (from && !isBefore(from, delivery.position)) continue; // applied already
          batch.push(delivery.event);
          from = delivery.position;
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
      const index = last ? pending.findIndex((delivery) => delivery.event.id === last.id) : -1;
      if (index < 0 || !live) return; // from the feed, or the channel went (the broker redelivers)
      live.ack(pending[index]!.message, true);
      pending = pending.slice(index + 1);
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

function decode(message: ConsumeMessage): EventEnvelope | undefined {
  try {
    const event = JSON.parse(message.content.toString('utf8')) as EventEnvelope;
    parsePosition(event.position);
    return typeof event.id === 'string' && typeof event.type === 'string' ? event : undefined;
  } catch {
    return undefined;
  }
}
