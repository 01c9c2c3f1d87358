export type { EventEnvelope, EventMetadata, NewEvent } from './envelope.ts';
export {
  appendEvents,
  createOutboxTableV1,
  dropOutboxTableV1,
  formatPosition,
  outboxChannel,
  parsePosition,
  readOutbox,
  type OutboxPosition,
} from './outbox.ts';
export { uuidv7 } from './uuid.ts';
export { registerEventFeed, type EventFeedOptions } from './feed.ts';
export type { EventTransport, Producer, Subscription } from './transport.ts';
export { feedTransport } from './feed-transport.ts';
export {
  createConsumerTablesV1,
  dropConsumerTablesV1,
  startConsumer,
  type Consumer,
  type ConsumerOptions,
  type ConsumerStats,
  type EventHandler,
} from './consumer.ts';
export { registerConsumerRoutes, type DeadLetter } from './dead-letters.ts';
