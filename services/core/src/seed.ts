import { sql, type Kysely } from 'kysely';

// The sample resource, REF001 John Smith (label MR), and a second one, with addresses, an
// engagement, an intake, entries and orders. Rows have fixed ids and hang off their resource's
// reference number (REF001 may exist from an earlier seed with another id), so every run is idempotent.
export async function seed(db: Kysely<unknown>): Promise<void> {
  await sql`
    INSERT INTO resources (reference_number, label_code, first_name, last_name, date_of_birth, gender, email)
    VALUES ('REF001', 'MR', 'John', 'Smith', '1970-04-12', 'M', 'john.smith@example.com'),
           ('REF002', 'DR', 'Jane', 'Doe', '1982-09-30', 'F', 'jane.doe@example.com')
    ON CONFLICT (reference_number) DO NOTHING`.execute(db);
  await sql`
    INSERT INTO resource_addresses (id, resource_id, address_type, address_line1, city, postal_code, region_code, district_code, is_primary)
    SELECT v.id::uuid, r.id, v.address_type, v.line1, v.city, v.postal_code, v.region_code, v.district_code, v.is_primary
    FROM (VALUES ('00000000-0000-4000-8001-000000000001', 'REF001', 'HOME', '123 Main Street', 'Pasadena', '91101', 'US-CA', 'US-CA-LA', true),
                 ('00000000-0000-4000-8001-000000000002', 'REF001', 'WORK', '500 Market Street', 'San Francisco', '94105', 'US-CA', 'US-CA-SF', false),
                 ('00000000-0000-4000-8001-000000000003', 'REF002', 'HOME', '42 Broadway', 'New York', '10004', 'US-NY', 'US-NY-NY', true))
         AS v (id, reference_number, address_type, line1, city, postal_code, region_code, district_code, is_primary)
    JOIN resources r ON r.reference_number = v.reference_number
    ON CONFLICT (id) DO NOTHING`.execute(db);
  await sql`
    INSERT INTO engagements (id, resource_id, department_code, engagement_type, status, started_at, ended_at)
    SELECT '00000000-0000-4000-8002-000000000001', id, 'ENDO', 'OUTPATIENT', 'CLOSED', '2025-01-15 09:00+00', '2025-01-15 09:40+00'
    FROM resources WHERE reference_number = 'REF001'
    ON CONFLICT (id) DO NOTHING`.execute(db);
  await sql`
    INSERT INTO intakes (id, resource_id, engagement_id, department_code, intake_at, priority, reason)
    SELECT '00000000-0000-4000-8003-000000000001', resource_id, id, 'ENDO', '2025-01-15 08:45+00', 'ROUTINE', 'Follow-up of blood sugar levels'
    FROM engagements WHERE id = '00000000-0000-4000-8002-000000000001'
    ON CONFLICT (id) DO NOTHING`.execute(db);
  await sql`
    INSERT INTO entries (id, resource_id, engagement_id, entry_date, classification_code, notes)
    SELECT v.id::uuid, e.resource_id, e.id, '2025-01-15', v.code, v.notes
    FROM (VALUES ('00000000-0000-4000-8004-000000000001', 'E11.9', 'HbA1c 7.1 %'),
                 ('00000000-0000-4000-8004-000000000002', 'I10', 'Blood pressure 142/91')) AS v (id, code, notes)
    JOIN engagements e ON e.id = '00000000-0000-4000-8002-000000000001'
    ON CONFLICT (id) DO NOTHING`.execute(db);
  // Seeded orders take their numbers from the counter new ones use.
  await sql`
    INSERT INTO order_code_counters (year, last_value) VALUES (2025, 2)
    ON CONFLICT (year) DO UPDATE SET last_value = greatest(order_code_counters.last_value, 2)`.execute(db);
  await sql`
    INSERT INTO orders (id, order_code, item_name, quantity, status, department_code, resource_id, ordered_at, completed_at)
    SELECT v.id::uuid, v.code, v.item, v.quantity, v.status, v.department, r.id, v.ordered_at::timestamptz, v.completed_at::timestamptz
    FROM (VALUES ('00000000-0000-4000-8005-000000000001', 'ORD-2025-000001', 'HbA1c blood test', 1, 'COMPLETED', 'LAB', '2025-01-15 09:10+00', '2025-01-15 11:30+00'),
                 ('00000000-0000-4000-8005-000000000002', 'ORD-2025-000002', 'Metformin 500 mg', 60, 'PENDING', 'PHARM', '2025-01-15 09:35+00', NULL))
         AS v (id, code, item, quantity, status, department, ordered_at, completed_at)
    JOIN resources r ON r.reference_number = 'REF001'
    ON CONFLICT (order_code) DO NOTHING`.execute(db);
}
