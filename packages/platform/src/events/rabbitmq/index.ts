import type { ServiceCredentials } from '../../internal-auth/credentials.ts';
import { fetchEvents } from '../feed-transport.ts';
import { registerEventFeed } from '../feed.ts';
import type { EventTransport } from '../transport.ts';
import { sharedConnection } from './connection.ts';
import { startRelay, type Relay } from './relay.ts';
import { brokerSubscription, type BrokerSubscription } from './subscription.ts';

export { relayedThrough } from './relay-marker.ts';
export { startRelay, type Relay, type RelayOptions, type RelayStats } from './relay.ts';
export { DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE, groupQueue } from './topology.ts';
export { BATCH_LIMIT, PREFETCH, type BrokerSubscription } from './subscription.ts';

export interface RabbitMqTransportOptions {
  /** `RABBITMQ_URL`, e.g. `amqp://user:password@rabbitmq:5672`. */
  readonly url: string;
  /** A producer's base URL, for the catch-up a subscription does from its feed. */
  readonly urlOf: (service: string) => string;
  readonly credentials: ServiceCredentials;
  readonly onError?: (error: unknown) => void;
}

/** An event transport whose subscriptions tell whether they are live on their queue. */
export interface RabbitMqTransport extends EventTransport {
  subscribe(options: Parameters<EventTransport['subscribe']>[0]): BrokerSubscription;
}

/**
 * Events through RabbitMQ (`EVENT_TRANSPORT=rabbitmq`): the producer's relay publishes its
 * committed outbox to a topic exchange with publisher confirms; each consumer group has a
 * durable quorum queue, each broadcast instance an exclusive one. The producer's feed stays up,
 * for the catch-up a subscription does when it (re)connects. Producers need the `outbox_relayed`
 * table (`createOutboxRelayV1`, next to the outbox) and `listenUrl` (the relay's lock session).
 *
 * @example
 * const transport = rabbitmqTransport({ url: env.RABBITMQ_URL, urlOf: (service) => peers[service], credentials });
 */
export function rabbitmqTransport(options: RabbitMqTransportOptions): RabbitMqTransport {
  // Publishing and consuming on connections of their own: the broker throttles a connection that
  // publishes faster than its queues take (flow control), which would also hold up the acks a
  // consumer sends on it, and with them its next deliveries.
  const publishing = sharedConnection(options.url, options.onError, `archipelago relay (pid ${process.pid})`);
  const consuming = sharedConnection(options.url, options.onError, `archipelago subscriptions (pid ${process.pid})`);
  return {
    name: 'rabbitmq',
    async publish(producer) {
      const { listenUrl } = producer;
      if (!listenUrl) throw new Error(`the RabbitMQ relay of ${producer.source} needs its database URL (listenUrl) for its leader lock`);
      await registerEventFeed(producer.app, { source: producer.source, schema: producer.schema, db: producer.db, listenUrl });
      const relay: Relay = startRelay({ producer: { ...producer, listenUrl }, connection: publishing, onError: options.onError });
      producer.app.addHook('onClose', () => relay.stop());
    },
    subscribe({ source, group, mode = 'group' }) {
      return brokerSubscription({
        connection: consuming,
        source,
        group,
        mode,
        onError: options.onError,
        catchUp: (after, receive) => fetchEvents(options.credentials, source, options.urlOf(source), after, receive),
      });
    },
  };
}
