import { sql, type Kysely } from 'kysely';
import { createConsumerTablesV1, dropConsumerTablesV1 } from '@archipelago/platform/events';
import { createIdempotencyKeysTableV1, dropIdempotencyKeysTableV1 } from '@archipelago/platform/idempotency';
import { createJobTablesV1, dropJobTablesV1 } from '@archipelago/platform/jobs';
import { createLookupBookkeepingV1, createLookupTableV1, dropLookupBookkeepingV1, dropLookupTableV1 } from '@archipelago/platform/lookups';

// Seed 002's notifications partitioned by month on created_at (a default partition takes any month
// not created yet), one row per department broadcast or per user, with state per user in
// notification_receipts (read, seen, archived, actioned). The first table's rows are carried over.
export async function up(db: Kysely<unknown>): Promise<void> {
  // The first tables' rows wait in temporary copies: their index and key names are taken again.
  await sql`CREATE TEMPORARY TABLE notifications_v0 ON COMMIT DROP AS SELECT * FROM notifications`.execute(db);
  await sql`CREATE TEMPORARY TABLE notification_reads_v0 ON COMMIT DROP AS SELECT * FROM notification_reads`.execute(db);
  await sql`DROP TABLE notification_reads, notifications`.execute(db);
  await sql`
    CREATE TABLE notifications (
      id                uuid NOT NULL DEFAULT gen_random_uuid(),
      department_code   varchar(20),
      user_id           uuid,
      notification_type varchar(50) NOT NULL,
      title             varchar(255) NOT NULL,
      message           text NOT NULL,
      priority          varchar(20) NOT NULL DEFAULT 'NORMAL' CHECK (priority IN ('CRITICAL', 'HIGH', 'NORMAL', 'LOW')),
      reference_id      uuid,
      reference_type    varchar(50),
      metadata          jsonb NOT NULL DEFAULT '{}',
      created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
      updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
      deleted_at        timestamptz,
      created_by        varchar(100),
      PRIMARY KEY (id, created_at),
      CHECK (user_id IS NOT NULL OR department_code IS NOT NULL)
    ) PARTITION BY RANGE (created_at)`.execute(db);
  await sql`CREATE TABLE notifications_default PARTITION OF notifications DEFAULT`.execute(db);
  // The seed's indexes, with (created_at, id) last so feeds and cursors read them in order.
  await sql`CREATE INDEX idx_notifications_department_created ON notifications (department_code, created_at DESC, id DESC)`.execute(db);
  await sql`CREATE INDEX idx_notifications_user_created ON notifications (user_id, created_at DESC, id DESC)`.execute(db);
  await sql`CREATE INDEX idx_notifications_created_at ON notifications (created_at DESC)`.execute(db);
  await sql`CREATE INDEX idx_notifications_department_type ON notifications (department_code, notification_type)`.execute(db);
  await sql`
    CREATE TABLE notification_receipts (
      user_id         uuid NOT NULL,
      notification_id uuid NOT NULL,
      read_at         timestamptz,
      seen_at         timestamptz,
      archived_at     timestamptz,
      actioned_at     timestamptz,
      updated_at      timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (user_id, notification_id)
    )`.execute(db);
  await sql`CREATE INDEX idx_notification_receipts_notification ON notification_receipts (notification_id)`.execute(db);
  await sql`
    INSERT INTO notifications (id, department_code, user_id, notification_type, title, message, priority, reference_id, reference_type, metadata, created_at, updated_at, created_by)
    SELECT id, department_id, user_id, notification_type, title, message, priority, reference_id, reference_type, COALESCE(data, '{}'), created_at, created_at, created_by
    FROM notifications_v0`.execute(db);
  await sql`
    INSERT INTO notification_receipts (user_id, notification_id, read_at, updated_at)
    SELECT user_id, notification_id, read_at, read_at FROM notification_reads_v0`.execute(db);

  // A month's partition, created by the running service's jobs (which may not run DDL themselves,
  // hence SECURITY DEFINER): rows of that month waiting in the default partition move into it in
  // the same transaction, since a partition cannot be attached while the default holds its rows.
  // Returns how many rows moved, or null when the partition already existed.
  await sql`
    CREATE FUNCTION notification_ensure_partition(month date) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    DECLARE
      start_at timestamptz := date_trunc('month', month::timestamp) AT TIME ZONE 'UTC';
      end_at   timestamptz := (date_trunc('month', month::timestamp) + interval '1 month') AT TIME ZONE 'UTC';
      name     text := format('notifications_y%sm%s', to_char(month, 'YYYY'), to_char(month, 'MM'));
      moved    integer;
    BEGIN
      IF to_regclass(name) IS NOT NULL THEN RETURN NULL; END IF;
      LOCK TABLE notifications_default IN SHARE ROW EXCLUSIVE MODE;
      EXECUTE format('CREATE TABLE %I (LIKE notifications INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
      EXECUTE format('INSERT INTO %I SELECT * FROM notifications_default WHERE created_at >= %L AND created_at < %L', name, start_at, end_at);
      GET DIAGNOSTICS moved = ROW_COUNT;
      DELETE FROM notifications_default WHERE created_at >= start_at AND created_at < end_at;
      EXECUTE format('ALTER TABLE notifications ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, start_at, end_at);
      RETURN moved;
    END $$`.execute(db);
  await sql`
    SELECT notification_ensure_partition((date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => m))::date)
    FROM generate_series(0, 2) AS m`.execute(db);

  await createConsumerTablesV1(db);
  await createLookupBookkeepingV1(db);
  // Core's orders, so a feed shows the order's code and status (seed 002's feed query).
  await createLookupTableV1(db, {
    table: 'orders_lookup',
    key: ['id', 'uuid'],
    columns: { order_code: 'varchar(20) NOT NULL', status: 'varchar(20) NOT NULL', department_code: 'varchar(20) NOT NULL' },
  });
  await createJobTablesV1(db);
  await createIdempotencyKeysTableV1(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIdempotencyKeysTableV1(db);
  await dropJobTablesV1(db);
  await dropLookupTableV1(db, 'orders_lookup');
  await dropLookupBookkeepingV1(db);
  await dropConsumerTablesV1(db);
  await sql`DROP FUNCTION notification_ensure_partition(date)`.execute(db);
  await sql`
    CREATE TABLE notifications_v0 (
      id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      department_id     varchar(20),
      user_id           uuid,
      notification_type varchar(50) NOT NULL,
      title             varchar(255) NOT NULL,
      message           text NOT NULL,
      priority          varchar(20) NOT NULL DEFAULT 'NORMAL' CHECK (priority IN ('CRITICAL', 'HIGH', 'NORMAL', 'LOW')),
      reference_id      uuid,
      reference_type    varchar(50),
      data              jsonb,
      created_at        timestamptz NOT NULL DEFAULT now(),
      created_by        varchar(100),
      CHECK (user_id IS NOT NULL OR department_id IS NOT NULL)
    )`.execute(db);
  await sql`
    INSERT INTO notifications_v0 (id, department_id, user_id, notification_type, title, message, priority, reference_id, reference_type, data, created_at, created_by)
    SELECT id, department_code, user_id, notification_type, title, message, priority, reference_id, reference_type, metadata, created_at, created_by
    FROM notifications WHERE deleted_at IS NULL`.execute(db);
  await sql`
    CREATE TABLE notification_reads_v0 (
      notification_id uuid NOT NULL REFERENCES notifications_v0 (id) ON DELETE CASCADE,
      user_id         uuid NOT NULL,
      read_at         timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (notification_id, user_id)
    )`.execute(db);
  await sql`
    INSERT INTO notification_reads_v0 (notification_id, user_id, read_at)
    SELECT r.notification_id, r.user_id, r.read_at FROM notification_receipts r
    WHERE r.read_at IS NOT NULL AND EXISTS (SELECT 1 FROM notifications_v0 n WHERE n.id = r.notification_id)`.execute(db);
  await sql`DROP TABLE notification_receipts, notifications`.execute(db);
  await sql`ALTER TABLE notifications_v0 RENAME TO notifications`.execute(db);
  await sql`ALTER TABLE notification_reads_v0 RENAME TO notification_reads`.execute(db);
  await sql`CREATE INDEX idx_notifications_user_created ON notifications (user_id, created_at DESC, id DESC)`.execute(db);
  await sql`CREATE INDEX idx_notifications_department_type ON notifications (department_id, notification_type)`.execute(db);
}
