import type { Kysely } from 'kysely';
import { createIdempotencyKeysTableV1, dropIdempotencyKeysTableV1 } from '@archipelago/platform/idempotency';

// Idempotency-Key on every write: a retried request replays its first response instead of writing twice (docs/architecture.md#idempotency).
export async function up(db: Kysely<unknown>): Promise<void> {
  await createIdempotencyKeysTableV1(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIdempotencyKeysTableV1(db);
}
