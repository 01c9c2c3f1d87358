import type { Channel, ConsumeMessage } from 'amqplib';
import type { SubscriptionMode } from '@archipelago/registry';
import type { EventEnvelope } from '../envelope.ts';
import { isBefore, parsePosition, type OutboxPosition } from '../outbox.ts';
import type { Subscription } from '../transport.ts';
import type { SharedConnection } from './connection.ts';
import { declareBroadcastQueue, declareGroupQueue } from './topology.ts';

/** Within the 100–300 the brief for brokers suggests: enough to keep a batch coming, little to redeliver. */
export const PREFETCH = 200;

interface Delivery {
  readonly message: ConsumeMessage;
  readonly event: EventEnvelope;
  readonly position: OutboxPosition;
}

/** Reads the producer's own feed after a position (`after` undefined: from the start). */
export type CatchUp = (after: string | undefined, options: { limit: number; waitMs: number; signal: AbortSignal }) => Promise<EventEnvelope[]>;

/**
 * A subscription to a source's events through RabbitMQ. Every (re)opened channel first catches
 * up from the producer's feed, after the consumer's position, until the feed has nothing more
 * (a group's queue then holds everything committed since it was bound; a broadcast's new queue
 * everything since it reconnected); a group's first start thus reads the backlog from the start.
 * Then it takes deliveries in order. The relay publishes in commit order, so an event at or
 * before the consumer's position is one it applied already (a republished or redelivered one):
 * it is acknowledged and dropped, and the consumer's position, committed in its own
 * transaction, stays its exactly-once guard. Deliveries are acknowledged (multiple) when
 * `acknowledge` is called, i.e. after the consumer committed; unacknowledged ones go back to the
 * queue when the channel goes.
 */
export function brokerSubscription(options: { connection: SharedConnection; source: string; group: string; mode: SubscriptionMode; catchUp: CatchUp; onError?: (error: unknown) => void }): Subscription {
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
    async receive(after, receive) {
      if (closed) return [];
      opening ??= open().catch((error: unknown) => {
        opening = undefined;
        throw error;
      });
      const current = await opening;
      if (!caughtUp) {
        // A broadcast's first queue starts at "now"; it has nothing to catch up on.
        if (mode === 'broadcast' && after === undefined) caughtUp = true;
        else {
          const events = await options.catchUp(after, { ...receive, waitMs: 0 });
          if (events.length > 0) return events;
          caughtUp = true;
        }
      }
      let from = after ? parsePosition(after) : undefined;
      const batch: EventEnvelope[] = [];
      const collect = () => {
        for (const delivery of pending) {
          if (batch.length >= receive.limit) break;
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
