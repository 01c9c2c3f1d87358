import type { Channel } from 'amqplib';

/** The topic exchange every producer publishes to, with routing key `<source>.<event type>`. */
export const EVENTS_EXCHANGE = 'archipelago.events';
/** Where a group queue sends what its subscription cannot read (parked, for an operator). */
export const DEAD_LETTER_EXCHANGE = 'archipelago.events.dead-letter';

export const routingKey = (source: string, type: string) => `${source}.${type}`;

/** The durable queue of one consumer group for one source. */
export const groupQueue = (source: string, group: string) => `${group}.from.${source}`;

export async function declareExchanges(channel: Channel): Promise<void> {
  await channel.assertExchange(EVENTS_EXCHANGE, 'topic', { durable: true });
  await channel.assertExchange(DEAD_LETTER_EXCHANGE, 'direct', { durable: true });
}

/**
 * A group's quorum queue (replicated, durable), with a single active consumer so the group's
 * instances take its events in order, one after the other, and its dead-letter queue.
 */
export async function declareGroupQueue(channel: Channel, source: string, group: string): Promise<string> {
  const queue = groupQueue(source, group);
  await declareExchanges(channel);
  await channel.assertQueue(`${queue}.dead-letters`, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.bindQueue(`${queue}.dead-letters`, DEAD_LETTER_EXCHANGE, queue);
  await channel.assertQueue(queue, {
    durable: true,
    arguments: { 'x-queue-type': 'quorum', 'x-single-active-consumer': true, 'x-dead-letter-exchange': DEAD_LETTER_EXCHANGE, 'x-dead-letter-routing-key': queue },
  });
  await channel.bindQueue(queue, EVENTS_EXCHANGE, `${source}.#`);
  return queue;
}

/** A broadcast instance's own queue: exclusive to its connection, gone with it. */
export async function declareBroadcastQueue(channel: Channel, source: string): Promise<string> {
  await declareExchanges(channel);
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
  await channel.bindQueue(queue, EVENTS_EXCHANGE, `${source}.#`);
  return queue;
}
