import { sql, type Kysely } from 'kysely';

// Everything secret is stored hashed (refresh tokens, API tokens, reset tokens) except the JWT
// signing keys, which IAM must use: their private half never leaves this table (see README).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE signing_keys (
      kid          varchar(64) PRIMARY KEY,
      algorithm    varchar(10) NOT NULL,
      public_jwk   jsonb NOT NULL,
      private_key  text NOT NULL,
      encrypted    boolean NOT NULL,
      active_from  timestamptz NOT NULL,
      created_at   timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  // A session is one sign-in (the JWT's sid); its refresh tokens rotate, and reuse of a used one
  // revokes the session: the whole family.
  await sql`
    CREATE TABLE sessions (
      id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      user_agent     varchar(300),
      ip             varchar(64),
      created_at     timestamptz NOT NULL DEFAULT now(),
      last_used_at   timestamptz NOT NULL DEFAULT now(),
      expires_at     timestamptz NOT NULL,
      revoked_at     timestamptz,
      revoked_reason varchar(30)
    )`.execute(db);
  await sql`CREATE INDEX sessions_user_id ON sessions (user_id) WHERE revoked_at IS NULL`.execute(db);
  await sql`
    CREATE TABLE refresh_tokens (
      token_hash  bytea PRIMARY KEY,
      session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
      created_at  timestamptz NOT NULL DEFAULT now(),
      used_at     timestamptz
    )`.execute(db);
  await sql`CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id)`.execute(db);
  await sql`
    CREATE TABLE api_tokens (
      id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      name         varchar(100) NOT NULL,
      prefix       varchar(16) NOT NULL UNIQUE,
      secret_hash  bytea NOT NULL,
      scopes       text[] NOT NULL,
      expires_at   timestamptz NOT NULL,
      last_used_at timestamptz,
      created_at   timestamptz NOT NULL DEFAULT now(),
      revoked_at   timestamptz
    )`.execute(db);
  await sql`CREATE INDEX api_tokens_user_id ON api_tokens (user_id)`.execute(db);
  await sql`
    CREATE TABLE api_token_usage (
      token_id uuid NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
      day      date NOT NULL,
      count    bigint NOT NULL DEFAULT 0,
      PRIMARY KEY (token_id, day)
    )`.execute(db);
  await sql`
    CREATE TABLE password_resets (
      token_hash bytea PRIMARY KEY,
      user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      used_at    timestamptz
    )`.execute(db);
  // Failed sign-ins per key (`account:<email>` or `ip:<address>`), for throttling and lockout.
  await sql`
    CREATE TABLE login_throttle (
      key          varchar(300) PRIMARY KEY,
      failures     integer NOT NULL,
      window_start timestamptz NOT NULL,
      locked_until timestamptz
    )`.execute(db);
  await sql`
    CREATE TABLE auth_audit_log (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      occurred_at timestamptz NOT NULL DEFAULT now(),
      event       varchar(40) NOT NULL,
      user_id     uuid,
      email       varchar(254),
      ip          varchar(64),
      detail      jsonb NOT NULL DEFAULT '{}'
    )`.execute(db);
  await sql`CREATE INDEX auth_audit_log_occurred_at ON auth_audit_log (occurred_at)`.execute(db);
  await sql`CREATE INDEX auth_audit_log_user_id ON auth_audit_log (user_id, occurred_at)`.execute(db);
  // Append-only: rows are added and, past retention, purged; never changed.
  await sql`
    CREATE FUNCTION auth_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'auth_audit_log is append-only';
    END $$`.execute(db);
  await sql`CREATE TRIGGER auth_audit_log_append_only BEFORE UPDATE ON auth_audit_log FOR EACH ROW EXECUTE FUNCTION auth_audit_log_append_only()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE auth_audit_log`.execute(db);
  await sql`DROP FUNCTION auth_audit_log_append_only()`.execute(db);
  for (const table of ['login_throttle', 'password_resets', 'api_token_usage', 'api_tokens', 'refresh_tokens', 'sessions', 'signing_keys']) {
    await sql`DROP TABLE ${sql.id(table)}`.execute(db);
  }
}
