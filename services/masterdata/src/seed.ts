import { sql, type Kysely } from 'kysely';

// The four labels of seed 000; existing rows are left as they are.
export async function seed(db: Kysely<unknown>): Promise<void> {
  await sql`
    INSERT INTO labels (code, label, display_name, abbreviation, display_order, is_active)
    VALUES ('MR', 'Mr.', 'Mister', 'Mr.', 1, true),
           ('MRS', 'Mrs.', 'Mistress', 'Mrs.', 2, true),
           ('MISS', 'Miss', 'Miss', 'Miss', 3, true),
           ('DR', 'Dr.', 'Doctor', 'Dr.', 4, true)
    ON CONFLICT (code) DO NOTHING`.execute(db);
}
