import type { Kysely } from 'kysely';
import { createOutboxRetentionV1, dropOutboxRetentionV1 } from '@archipelago/platform/events';

// The outbox keeps events for a while (7 days by default); this marks how far it has pruned.
export async function up(db: Kysely<unknown>): Promise<void> {
  await createOutboxRetentionV1(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropOutboxRetentionV1(db);
}
