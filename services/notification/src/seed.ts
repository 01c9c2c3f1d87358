import { sql, type Kysely } from 'kysely';

// A welcome broadcast to the ADMIN department, with a fixed id so the seed runs once.
export async function seed(db: Kysely<unknown>): Promise<void> {
  await sql`
    INSERT INTO notifications (id, department_code, notification_type, title, message, priority, created_by)
    SELECT '00000000-0000-4000-8000-000000000001', 'ADMIN', 'system.welcome', 'Welcome to Archipelago',
           'Notifications for your department appear here.', 'LOW', 'seed'
    WHERE NOT EXISTS (SELECT 1 FROM notifications WHERE id = '00000000-0000-4000-8000-000000000001')`.execute(db);
}
