import { sql, type Kysely } from 'kysely';

// Unread counts kept by the database, in the transaction of every change (a count over the tables
// reads every broadcast of the department: 138 ms with 1,000,000 rows). A user's unread count at
// priority p is the sum of three rows: (user, NULL) their own notifications not read or archived,
// (NULL, department) the department's broadcasts, and (user, department) minus the broadcasts of
// it they have read or archived. The department key is the broadcast's own, so a user who moves
// to another department is counted against that one's broadcasts, as the feed shows them.
// Statement triggers with transition tables keep the rows: one upsert per statement (a bulk
// insert is one), whatever code made the change — the API, the consumer, the archive, a restore.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE unread_counters (
      user_id         uuid,
      department_code varchar(20),
      priority        varchar(20) NOT NULL,
      unread          bigint NOT NULL,
      CHECK (user_id IS NOT NULL OR department_code IS NOT NULL)
    ) WITH (fillfactor = 50)`.execute(db);
  await sql`CREATE UNIQUE INDEX unread_counters_key ON unread_counters (user_id, department_code, priority) NULLS NOT DISTINCT`.execute(db);

  // What rows of a transition table (or a whole table) add to the counters, times sign: a live
  // notification adds one, and each read or archived receipt of it by a reader who sees it takes
  // one away; a read or archived receipt alone takes one away while its notification lives.
  // Receipts lock their notification (KEY SHARE) so an archival deleting it waits, then sees them.
  await sql`
    CREATE FUNCTION unread_counters_change(source text, rows text, sign integer) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
      SELECT CASE source
        WHEN 'notifications' THEN format($q$
          SELECT n.user_id, CASE WHEN n.user_id IS NULL THEN n.department_code END AS department_code, n.priority, %2$s AS delta
          FROM %1$I n WHERE n.deleted_at IS NULL
          UNION ALL
          SELECT r.user_id, CASE WHEN n.user_id IS NULL THEN n.department_code END, n.priority, %2$s * -1
          FROM %1$I n JOIN notification_receipts r ON r.notification_id = n.id AND r.user_id = COALESCE(n.user_id, r.user_id)
          WHERE n.deleted_at IS NULL AND (r.read_at IS NOT NULL OR r.archived_at IS NOT NULL)$q$, rows, sign)
        ELSE format($q$
          SELECT * FROM (
            SELECT r.user_id, CASE WHEN n.user_id IS NULL THEN n.department_code END AS department_code, n.priority, %2$s * -1 AS delta
            FROM %1$I r JOIN notifications n ON n.id = r.notification_id AND COALESCE(n.user_id, r.user_id) = r.user_id
            WHERE n.deleted_at IS NULL AND (r.read_at IS NOT NULL OR r.archived_at IS NOT NULL)
            FOR KEY SHARE OF n) AS receipts$q$, rows, sign)
      END $$`.execute(db);
  // Adds changes up per counter, in key order (two writers never lock counters in opposite orders).
  await sql`
    CREATE FUNCTION unread_counters_upsert(changes text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
      SELECT format($q$
        INSERT INTO unread_counters AS c (user_id, department_code, priority, unread)
        SELECT user_id, department_code, priority, sum(delta) FROM (%s) AS change
        GROUP BY 1, 2, 3 HAVING sum(delta) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (user_id, department_code, priority) DO UPDATE SET unread = c.unread + EXCLUDED.unread$q$, changes)
    $$`.execute(db);
  // An update counts as its old rows leaving and its new rows coming; a TRUNCATE recounts everything.
  await sql`
    CREATE FUNCTION unread_counters_follow() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    DECLARE
      parts text[] := '{}';
    BEGIN
      IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM unread_counters;
        parts := ARRAY[unread_counters_change('notifications', 'notifications', 1)];
      END IF;
      IF TG_OP IN ('INSERT', 'UPDATE') THEN parts := parts || unread_counters_change(TG_TABLE_NAME, 'new_rows', 1); END IF;
      IF TG_OP IN ('DELETE', 'UPDATE') THEN parts := parts || unread_counters_change(TG_TABLE_NAME, 'old_rows', -1); END IF;
      EXECUTE unread_counters_upsert(array_to_string(parts, ' UNION ALL '));
      RETURN NULL;
    END $$`.execute(db);
  for (const table of ['notifications', 'notification_receipts']) {
    await sql`CREATE TRIGGER unread_counters_insert AFTER INSERT ON ${sql.id(table)} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unread_counters_follow()`.execute(db);
    await sql`CREATE TRIGGER unread_counters_update AFTER UPDATE ON ${sql.id(table)} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unread_counters_follow()`.execute(db);
    await sql`CREATE TRIGGER unread_counters_delete AFTER DELETE ON ${sql.id(table)} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION unread_counters_follow()`.execute(db);
    await sql`CREATE TRIGGER unread_counters_truncate AFTER TRUNCATE ON ${sql.id(table)} FOR EACH STATEMENT EXECUTE FUNCTION unread_counters_follow()`.execute(db);
  }
  // The rows there are now, counted once, with writers kept out meanwhile.
  await sql`LOCK TABLE notifications, notification_receipts IN SHARE MODE`.execute(db);
  await sql.raw(`DO $$ BEGIN EXECUTE unread_counters_upsert(unread_counters_change('notifications', 'notifications', 1)); END $$`).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['notifications', 'notification_receipts']) {
    for (const event of ['insert', 'update', 'delete', 'truncate']) await sql`DROP TRIGGER ${sql.id(`unread_counters_${event}`)} ON ${sql.id(table)}`.execute(db);
  }
  await sql`DROP FUNCTION unread_counters_follow()`.execute(db);
  await sql`DROP FUNCTION unread_counters_upsert(text)`.execute(db);
  await sql`DROP FUNCTION unread_counters_change(text, text, integer)`.execute(db);
  await sql`DROP TABLE unread_counters`.execute(db);
}
