import { sql, type Kysely } from 'kysely';

// The four labels (Mr., Mrs., Dr., Prof.) and a handful of other master data; existing rows are left as they are.
export async function seed(db: Kysely<unknown>): Promise<void> {
  await sql`
    INSERT INTO labels (code, label, display_name, abbreviation, display_order, is_active)
    VALUES ('MR', 'Mr.', 'Mister', 'Mr.', 1, true),
           ('MRS', 'Mrs.', 'Mistress', 'Mrs.', 2, true),
           ('MISS', 'Miss', 'Miss', 'Miss', 3, true),
           ('DR', 'Dr.', 'Doctor', 'Dr.', 4, true)
    ON CONFLICT (code) DO NOTHING`.execute(db);
  await sql`
    INSERT INTO regions (code, name, zone)
    VALUES ('US-CA', 'California', 'West'),
           ('US-WA', 'Washington', 'West'),
           ('US-NY', 'New York', 'East'),
           ('US-MA', 'Massachusetts', 'East'),
           ('US-IL', 'Illinois', 'Central'),
           ('US-TX', 'Texas', 'Central')
    ON CONFLICT (code) DO NOTHING`.execute(db);
  await sql`
    INSERT INTO districts (code, name, region_code)
    VALUES ('US-CA-LA', 'Los Angeles County', 'US-CA'),
           ('US-CA-SF', 'San Francisco County', 'US-CA'),
           ('US-CA-SD', 'San Diego County', 'US-CA'),
           ('US-WA-KING', 'King County', 'US-WA'),
           ('US-NY-KINGS', 'Kings County', 'US-NY'),
           ('US-NY-NY', 'New York County', 'US-NY'),
           ('US-IL-COOK', 'Cook County', 'US-IL'),
           ('US-TX-HARRIS', 'Harris County', 'US-TX')
    ON CONFLICT (code) DO NOTHING`.execute(db);
  await sql`
    INSERT INTO sub_districts (code, name, district_code)
    VALUES ('US-CA-LA-PAS', 'Pasadena', 'US-CA-LA'),
           ('US-CA-LA-LB', 'Long Beach', 'US-CA-LA'),
           ('US-CA-SF-MIS', 'Mission District', 'US-CA-SF'),
           ('US-NY-NY-HAR', 'Harlem', 'US-NY-NY'),
           ('US-IL-COOK-EVA', 'Evanston', 'US-IL-COOK')
    ON CONFLICT (code) DO NOTHING`.execute(db);
  await sql`
    INSERT INTO departments (code, name)
    VALUES ('CARDIO', 'Cardiology'),
           ('ENDO', 'Endocrinology'),
           ('RADIO', 'Radiology'),
           ('LAB', 'Laboratory'),
           ('PHARM', 'Pharmacy'),
           ('ER', 'Emergency')
    ON CONFLICT (code) DO NOTHING`.execute(db);
  await sql`
    INSERT INTO classification_codes (code, description, category)
    VALUES ('E11.9', 'Type 2 diabetes mellitus without complications', 'Endocrine, nutritional and metabolic diseases'),
           ('E78.5', 'Hyperlipidemia, unspecified', 'Endocrine, nutritional and metabolic diseases'),
           ('I10', 'Essential (primary) hypertension', 'Diseases of the circulatory system'),
           ('J45.909', 'Unspecified asthma, uncomplicated', 'Diseases of the respiratory system'),
           ('M54.5', 'Low back pain', 'Diseases of the musculoskeletal system'),
           ('F41.1', 'Generalized anxiety disorder', 'Mental and behavioural disorders')
    ON CONFLICT (code) DO NOTHING`.execute(db);
}
