import { sql, type Kysely } from 'kysely';

// Seed 000's sample resource, REF001 John Smith (label MR).
export async function seed(db: Kysely<unknown>): Promise<void> {
  await sql`
    INSERT INTO resources (reference_number, label_code, first_name, last_name)
    VALUES ('REF001', 'MR', 'John', 'Smith')
    ON CONFLICT (reference_number) DO NOTHING`.execute(db);
}
