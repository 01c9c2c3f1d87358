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
