import { sql, type Kysely } from 'kysely';

// Resources (people or things core keeps records of). label_code references labels_lookup.code, checked in the application.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE resources (
      id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      reference_number varchar(11) NOT NULL UNIQUE,
      label_code       varchar(10),
      first_name       varchar(50) NOT NULL,
      last_name        varchar(50) NOT NULL,
      version          bigint NOT NULL DEFAULT 1,
      created_at       timestamptz NOT NULL DEFAULT now(),
      updated_at       timestamptz NOT NULL DEFAULT now(),
      created_by       uuid,
      updated_by       uuid,
      deleted_at       timestamptz
    )`.execute(db);
  await sql`CREATE INDEX idx_resources_label_code ON resources (label_code)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE resources`.execute(db);
}
