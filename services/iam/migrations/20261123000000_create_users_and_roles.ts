import { sql, type Kysely } from 'kysely';

// Identity basics: users (case-insensitive unique email, soft delete) and roles.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE roles (
      id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name        varchar(50) NOT NULL UNIQUE,
      description text NOT NULL DEFAULT '',
      created_at  timestamptz NOT NULL DEFAULT now(),
      updated_at  timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TABLE users (
      id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      email           varchar(254) NOT NULL,
      display_name    varchar(100) NOT NULL,
      password_hash   text,
      status          varchar(10) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
      department_code varchar(20),
      version         bigint NOT NULL DEFAULT 1,
      created_at      timestamptz NOT NULL DEFAULT now(),
      updated_at      timestamptz NOT NULL DEFAULT now(),
      deleted_at      timestamptz
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE deleted_at IS NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE users`.execute(db);
  await sql`DROP TABLE roles`.execute(db);
}
