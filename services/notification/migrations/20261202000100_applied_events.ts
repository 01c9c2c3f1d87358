import { sql, type Kysely } from 'kysely';

// The events of core whose notifications were made: a redelivered event (a cursor moved back, a
// replay, a broker's redelivery) finds its id here and makes nothing. The notifications table
// cannot hold the guarantee itself: a unique index on a partitioned table must include created_at.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE applied_events (
      event_id   uuid PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX idx_applied_events_applied_at ON applied_events (applied_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE applied_events`.execute(db);
}
