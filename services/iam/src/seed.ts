import { sql, type Kysely } from 'kysely';

// The three built-in roles; the admin user arrives with password hashing (IAM issue).
export async function seed(db: Kysely<unknown>): Promise<void> {
  await sql`
    INSERT INTO roles (name, description)
    VALUES ('admin', 'Full access to every service'),
           ('staff', 'Day-to-day work within their department'),
           ('viewer', 'Read-only access')
    ON CONFLICT (name) DO NOTHING`.execute(db);
}
