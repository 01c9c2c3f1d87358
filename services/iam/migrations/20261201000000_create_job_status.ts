import type { Kysely } from 'kysely';
import { createJobTablesV1, dropJobTablesV1 } from '@archipelago/platform/jobs';

// Scheduled jobs' status (last run, outcome, next run), shared by every instance (docs/architecture.md#jobs).
export async function up(db: Kysely<unknown>): Promise<void> {
  await createJobTablesV1(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropJobTablesV1(db);
}
