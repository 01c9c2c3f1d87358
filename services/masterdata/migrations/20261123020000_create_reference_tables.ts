import { sql, type Kysely } from 'kysely';

// The other master data (regions, districts, sub-districts, departments, classification codes), in the shape of labels: a unique code, business columns,
// is_active, version (orders events for lookups), audit columns and soft delete. A parent code
// also has a foreign key (rows are only soft-deleted, so it never blocks a delete); that a parent
// is live is checked by the service.
export async function up(db: Kysely<unknown>): Promise<void> {
  const audit = sql`
      is_active   boolean NOT NULL DEFAULT true,
      version     bigint NOT NULL DEFAULT 1,
      created_at  timestamptz NOT NULL DEFAULT now(),
      updated_at  timestamptz NOT NULL DEFAULT now(),
      created_by  uuid,
      updated_by  uuid,
      deleted_at  timestamptz`;
  await sql`
    CREATE TABLE regions (
      id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      code  varchar(10) NOT NULL UNIQUE,
      name  varchar(100) NOT NULL,
      zone  varchar(10) NOT NULL,
      ${audit}
    )`.execute(db);
  await sql`
    CREATE TABLE districts (
      id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      code        varchar(20) NOT NULL UNIQUE,
      name        varchar(100) NOT NULL,
      region_code varchar(10) NOT NULL REFERENCES regions (code),
      ${audit}
    )`.execute(db);
  await sql`
    CREATE TABLE sub_districts (
      id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      code          varchar(20) NOT NULL UNIQUE,
      name          varchar(100) NOT NULL,
      district_code varchar(20) NOT NULL REFERENCES districts (code),
      ${audit}
    )`.execute(db);
  await sql`
    CREATE TABLE departments (
      id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      code  varchar(20) NOT NULL UNIQUE,
      name  varchar(100) NOT NULL,
      ${audit}
    )`.execute(db);
  await sql`
    CREATE TABLE classification_codes (
      id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      code        varchar(10) NOT NULL UNIQUE,
      description text NOT NULL,
      category    varchar(50) NOT NULL,
      ${audit}
    )`.execute(db);
  await sql`COMMENT ON TABLE regions IS 'Master data: regions (e.g. US-CA California, zone West)'`.execute(db);
  await sql`COMMENT ON TABLE districts IS 'Master data: districts of a region'`.execute(db);
  await sql`COMMENT ON TABLE sub_districts IS 'Master data: sub-districts of a district'`.execute(db);
  await sql`COMMENT ON TABLE departments IS 'Master data: departments'`.execute(db);
  await sql`COMMENT ON TABLE classification_codes IS 'Master data: classification (ICD-10) codes'`.execute(db);
  await sql`CREATE INDEX idx_regions_zone ON regions (zone) WHERE deleted_at IS NULL`.execute(db);
  await sql`CREATE INDEX idx_districts_region_code ON districts (region_code) WHERE deleted_at IS NULL`.execute(db);
  await sql`CREATE INDEX idx_sub_districts_district_code ON sub_districts (district_code) WHERE deleted_at IS NULL`.execute(db);
  await sql`CREATE INDEX idx_classification_codes_category ON classification_codes (category) WHERE deleted_at IS NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE classification_codes, departments, sub_districts, districts, regions`.execute(db);
}
