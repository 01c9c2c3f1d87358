import { sql, type Kysely } from 'kysely';

// The running service (iam_app) may add audit rows but never delete them: only the purge may,
// through a function that runs as the owner and deletes nothing younger than two years (the audit log's retention).
// One live reset link per account: a new request replaces the earlier link. Throttle counters
// now expire a window after the last attempt, not the first (progressive delays build up).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`REVOKE DELETE, TRUNCATE ON auth_audit_log FROM PUBLIC, iam_app`.execute(db);
  await sql`
    CREATE FUNCTION purge_auth_audit_log(retention_days integer) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    DECLARE purged bigint;
    BEGIN
      IF retention_days IS NULL OR retention_days < 730 THEN
        RAISE EXCEPTION 'auth_audit_log keeps entries at least 730 days (asked: %)', retention_days;
      END IF;
      DELETE FROM auth_audit_log WHERE occurred_at < now() - make_interval(days => retention_days);
      GET DIAGNOSTICS purged = ROW_COUNT;
      RETURN purged;
    END $$`.execute(db);
  await sql`REVOKE ALL ON FUNCTION purge_auth_audit_log(integer) FROM PUBLIC`.execute(db);
  await sql`GRANT EXECUTE ON FUNCTION purge_auth_audit_log(integer) TO iam_app`.execute(db);

  await sql`
    UPDATE password_resets r SET used_at = now()
    WHERE used_at IS NULL AND EXISTS (SELECT 1 FROM password_resets newer WHERE newer.user_id = r.user_id AND newer.used_at IS NULL AND (newer.created_at, newer.token_hash) > (r.created_at, r.token_hash))`.execute(db);
  await sql`CREATE UNIQUE INDEX password_resets_one_live ON password_resets (user_id) WHERE used_at IS NULL`.execute(db);
  await sql`ALTER TABLE login_throttle RENAME COLUMN window_start TO last_attempt_at`.execute(db);
  await sql`ALTER TABLE login_throttle ALTER COLUMN key TYPE varchar(400)`.execute(db); // pair:<email>|<address>
  await sql`CREATE INDEX sessions_user_ip ON sessions (user_id, ip)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX sessions_user_ip`.execute(db);
  await sql`DELETE FROM login_throttle WHERE length(key) > 300`.execute(db);
  await sql`ALTER TABLE login_throttle ALTER COLUMN key TYPE varchar(300)`.execute(db);
  await sql`ALTER TABLE login_throttle RENAME COLUMN last_attempt_at TO window_start`.execute(db);
  await sql`DROP INDEX password_resets_one_live`.execute(db);
  await sql`DROP FUNCTION purge_auth_audit_log(integer)`.execute(db);
  await sql`GRANT DELETE ON auth_audit_log TO iam_app`.execute(db);
}
