import { sql, type Kysely } from 'kysely';

// A fully archived month's partition is dropped by the archival job, which may not run DDL itself
// (hence SECURITY DEFINER). The parent is locked first, in the order inserts take their locks, and
// only for lock_timeout: a busy table makes this run give up, and the next run drops the month.
// Returns whether the partition went (false: it does not exist, or still holds rows).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION notification_drop_partition(month date) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET lock_timeout = '2s' AS $$
    DECLARE
      name     text := format('notifications_y%sm%s', to_char(month, 'YYYY'), to_char(month, 'MM'));
      has_rows boolean;
    BEGIN
      IF to_regclass(name) IS NULL THEN RETURN false; END IF;
      LOCK TABLE notifications IN ACCESS EXCLUSIVE MODE;
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', name) INTO has_rows;
      IF has_rows THEN RETURN false; END IF;
      EXECUTE format('DROP TABLE %I', name);
      RETURN true;
    END $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION notification_drop_partition(date)`.execute(db);
}
