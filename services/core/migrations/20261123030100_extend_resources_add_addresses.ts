import { sql, type Kysely } from 'kysely';

// Resources get contact details and soft-delete-aware lookups; their addresses
// (resource_addresses) hold region and district codes of masterdata, checked in the application.
// Addresses are deleted for real: core's address report joins them without a deleted_at filter.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE resources
      ADD COLUMN date_of_birth date,
      ADD COLUMN gender        varchar(10),
      ADD COLUMN email         varchar(255),
      ADD COLUMN phone         varchar(30)`.execute(db);
  await sql`CREATE INDEX idx_resources_last_name ON resources (last_name, first_name) WHERE deleted_at IS NULL`.execute(db);
  await sql`
    CREATE TABLE resource_addresses (
      id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      resource_id   uuid NOT NULL REFERENCES resources (id),
      address_type  varchar(10) NOT NULL DEFAULT 'HOME',
      address_line1 varchar(255) NOT NULL,
      address_line2 varchar(255),
      city          varchar(100),
      postal_code   varchar(20),
      region_code   varchar(10),
      district_code varchar(20),
      is_primary    boolean NOT NULL DEFAULT false,
      version       bigint NOT NULL DEFAULT 1,
      created_at    timestamptz NOT NULL DEFAULT now(),
      updated_at    timestamptz NOT NULL DEFAULT now(),
      created_by    uuid,
      updated_by    uuid
    )`.execute(db);
  await sql`CREATE INDEX idx_resource_addresses_resource_id ON resource_addresses (resource_id)`.execute(db);
  await sql`CREATE INDEX idx_resource_addresses_region_code ON resource_addresses (region_code)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE resource_addresses`.execute(db);
  await sql`DROP INDEX idx_resources_last_name`.execute(db);
  await sql`ALTER TABLE resources DROP COLUMN date_of_birth, DROP COLUMN gender, DROP COLUMN email, DROP COLUMN phone`.execute(db);
}
