import type { Kysely } from 'kysely';
import { createOutboxRelayV1, dropOutboxRelayV1 } from '@archipelago/platform/events';

// How far a relay (EVENT_TRANSPORT=rabbitmq) has handed the outbox to the broker, confirmed.
export async function up(db: Kysely<unknown>): Promise<void> {
  await createOutboxRelayV1(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropOutboxRelayV1(db);
}
