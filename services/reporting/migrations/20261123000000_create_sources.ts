import { sql, type Kysely } from 'kysely';

// The services whose tables reach this database by logical replication (DESIGN.md §8).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE sources (
      service     varchar(50) PRIMARY KEY,
      database    varchar(63) NOT NULL,
      publication varchar(63) NOT NULL,
      tables      text[] NOT NULL,
      updated_at  timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE sources`.execute(db);
}
