import { sql, type Kysely } from 'kysely';

// A resource's engagements (visits/episodes), intakes and recorded entries (`entries`,
// served as /api/v1/records). Codes of masterdata (department, classification) are checked in the
// application against the lookup tables; rows of this database have real foreign keys. Entries are
// deleted for real: core's entries report reads them without a deleted_at filter.
export async function up(db: Kysely<unknown>): Promise<void> {
  const audit = sql`
      version     bigint NOT NULL DEFAULT 1,
      created_at  timestamptz NOT NULL DEFAULT now(),
      updated_at  timestamptz NOT NULL DEFAULT now(),
      created_by  uuid,
      updated_by  uuid,
      deleted_at  timestamptz`;
  await sql`
    CREATE TABLE engagements (
      id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      resource_id     uuid NOT NULL REFERENCES resources (id),
      department_code varchar(20),
      engagement_type varchar(20) NOT NULL,
      status          varchar(10) NOT NULL DEFAULT 'OPEN',
      started_at      timestamptz NOT NULL DEFAULT now(),
      ended_at        timestamptz,
      notes           text,
      ${audit}
    )`.execute(db);
  await sql`
    CREATE TABLE intakes (
      id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      resource_id     uuid NOT NULL REFERENCES resources (id),
      engagement_id   uuid REFERENCES engagements (id),
      department_code varchar(20),
      intake_at       timestamptz NOT NULL DEFAULT now(),
      priority        varchar(10) NOT NULL DEFAULT 'ROUTINE',
      reason          varchar(500) NOT NULL,
      ${audit}
    )`.execute(db);
  await sql`
    CREATE TABLE entries (
      id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      resource_id         uuid NOT NULL REFERENCES resources (id),
      engagement_id       uuid REFERENCES engagements (id),
      entry_date          date NOT NULL DEFAULT current_date,
      classification_code varchar(10),
      notes               text,
      version             bigint NOT NULL DEFAULT 1,
      created_at          timestamptz NOT NULL DEFAULT now(),
      updated_at          timestamptz NOT NULL DEFAULT now(),
      created_by          uuid,
      updated_by          uuid
    )`.execute(db);
  await sql`CREATE INDEX idx_engagements_resource_id ON engagements (resource_id) WHERE deleted_at IS NULL`.execute(db);
  await sql`CREATE INDEX idx_intakes_resource_id ON intakes (resource_id) WHERE deleted_at IS NULL`.execute(db);
  await sql`CREATE INDEX idx_entries_resource_id ON entries (resource_id, entry_date)`.execute(db);
  await sql`CREATE INDEX idx_entries_engagement_id ON entries (engagement_id)`.execute(db);
  await sql`CREATE INDEX idx_entries_classification_code ON entries (classification_code)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE entries, intakes, engagements`.execute(db);
}
