import { sql, type Kysely } from 'kysely';

// Roles carry a version (for role.permissions-changed); permissions are `resource:action`;
// policies are allow/deny rules on top of roles, evaluated by the platform's auth helper.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE roles ADD COLUMN version bigint NOT NULL DEFAULT 1`.execute(db);
  await sql`ALTER TABLE users ADD CONSTRAINT users_email_format CHECK (email = btrim(email) AND position('@' in email) > 1)`.execute(db);
  await sql`
    CREATE TABLE permissions (
      id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name        varchar(100) NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$'),
      description text NOT NULL DEFAULT '',
      created_at  timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TABLE user_roles (
      user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      role_id    uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (user_id, role_id)
    )`.execute(db);
  await sql`CREATE INDEX user_roles_role_id ON user_roles (role_id)`.execute(db);
  await sql`
    CREATE TABLE role_permissions (
      role_id       uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
      permission_id uuid NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
      PRIMARY KEY (role_id, permission_id)
    )`.execute(db);
  await sql`CREATE INDEX role_permissions_permission_id ON role_permissions (permission_id)`.execute(db);
  await sql`
    CREATE TABLE policies (
      id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name        varchar(100) NOT NULL UNIQUE,
      description text NOT NULL DEFAULT '',
      effect      varchar(5) NOT NULL CHECK (effect IN ('allow', 'deny')),
      permission  varchar(100) NOT NULL CHECK (permission ~ '^[a-z][a-z0-9-]*:([a-z][a-z0-9-]*|[*])$'),
      role_id     uuid REFERENCES roles (id) ON DELETE CASCADE,
      condition   varchar(20) NOT NULL DEFAULT 'always' CHECK (condition IN ('always', 'same-department', 'other-department')),
      created_at  timestamptz NOT NULL DEFAULT now(),
      updated_at  timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE policies`.execute(db);
  await sql`DROP TABLE role_permissions`.execute(db);
  await sql`DROP TABLE user_roles`.execute(db);
  await sql`DROP TABLE permissions`.execute(db);
  await sql`ALTER TABLE users DROP CONSTRAINT users_email_format`.execute(db);
  await sql`ALTER TABLE roles DROP COLUMN version`.execute(db);
}
