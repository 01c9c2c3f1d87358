import type { Kysely } from 'kysely';
import { createOutboxTableV1, dropOutboxTableV1 } from '@archipelago/platform/events';

// The transactional outbox: order and resource changes commit together with their events (docs/architecture.md#events-and-the-outbox).
export async function up(db: Kysely<unknown>): Promise<void> {
  await createOutboxTableV1(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropOutboxTableV1(db);
}
