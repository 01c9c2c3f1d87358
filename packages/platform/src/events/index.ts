export type { EventEnvelope, EventMetadata, NewEvent } from './envelope.ts';
export {
  appendEvents,
  createOutboxRetentionV1,
  createOutboxTableV1,
  dropOutboxRetentionV1,
  dropOutboxTableV1,
  pruneOutbox,
  pruneOutboxJob,
  prunedThrough,
  formatPosition,
  OUTBOX_HORIZON,
  OUTBOX_RETENTION_MS,
  outboxChannel,
  outboxHead,
  parsePosition,
  readOutbox,
  type OutboxPosition,
} from './outbox.ts';
// The relay's table is created by migrations next to the outbox, without loading amqplib.
export { createOutboxRelayV1, dropOutboxRelayV1 } from './rabbitmq/relay-marker.ts';
export { uuidv7 } from './uuid.ts';
export { registerEventFeed, type EventFeedOptions } from './feed.ts';
export { EventsPruned, type EventTransport, type Producer, type Subscription } from './transport.ts';
export { feedTransport } from './feed-transport.ts';
export {
  createConsumerTablesV1,
  dropConsumerTablesV1,
  startConsumer,
  type Consumer,
  type BroadcastConsumerOptions,
  type BroadcastHandler,
  type ConsumerOptions,
  type ConsumerStats,
  type GroupConsumerOptions,
  type EventHandler,
} from './consumer.ts';
export { registerConsumerRoutes, type DeadLetter } from './dead-letters.ts';
export { createTransport, type TransportDeps } from './transports.ts';
export { assertEventPayloads, checkingEventPayloads, EventPayloadError } from './payloads.ts';
