import { sql, type Kysely } from 'kysely';

// Master data: label codes (Mr., Mrs., Dr., …). `version` orders events for lookups.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE labels (
      id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      code          varchar(10) NOT NULL UNIQUE,
      label         varchar(50) NOT NULL,
      display_name  varchar(50) NOT NULL,
      abbreviation  varchar(50),
      display_order integer NOT NULL DEFAULT 0,
      is_active     boolean NOT NULL DEFAULT true,
      version       bigint NOT NULL DEFAULT 1,
      created_at    timestamptz NOT NULL DEFAULT now(),
      updated_at    timestamptz NOT NULL DEFAULT now(),
      created_by    uuid,
      updated_by    uuid,
      deleted_at    timestamptz
    )`.execute(db);
  await sql`COMMENT ON TABLE labels IS 'Master data: label codes (Mr., Mrs., Dr., etc.)'`.execute(db);
  await sql`CREATE INDEX idx_labels_is_active ON labels (is_active) WHERE deleted_at IS NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE labels`.execute(db);
}
