import { sql, type Kysely } from 'kysely';

// Notifications of seed 002, with read state per user (the seed's single is_read is wrong for broadcasts).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE notifications (
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
  await sql`CREATE INDEX idx_notifications_user_created ON notifications (user_id, created_at DESC, id DESC)`.execute(db);
  await sql`CREATE INDEX idx_notifications_department_type ON notifications (department_id, notification_type)`.execute(db);
  await sql`
    CREATE TABLE notification_reads (
      notification_id uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
      user_id         uuid NOT NULL,
      read_at         timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (notification_id, user_id)
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE notification_reads`.execute(db);
  await sql`DROP TABLE notifications`.execute(db);
}
