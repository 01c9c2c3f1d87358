import { peerUrls } from '@archipelago/platform';
import { sql, type Kysely } from 'kysely';
import { afterAll } from 'vitest';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { withOwnerDatabase } from '@archipelago/platform/databases';
import { freePort, useTestDatabase } from '@archipelago/platform/testing';
import { testCredentials } from '@archipelago/platform/testing/credentials';
import { asUser, startTestIdentity } from '@archipelago/platform/testing/identity';
import { buildApp } from '../src/app.ts';
import type { CoreDatabase } from '../src/database.ts';
import { seed } from '../src/seed.ts';

/** Writes masterdata's seed codes straight into core's lookup tables (plus an inactive department, OLD). */
export async function fillLookups(db: Kysely<unknown>): Promise<void> {
  await sql`
    INSERT INTO labels_lookup (code, label, display_name, abbreviation, display_order, is_active, source_version)
    VALUES ('MR', 'Mr.', 'Mister', 'Mr.', 1, true, 1), ('MRS', 'Mrs.', 'Mistress', 'Mrs.', 2, true, 1),
           ('MISS', 'Miss', 'Miss', 'Miss', 3, true, 1), ('DR', 'Dr.', 'Doctor', 'Dr.', 4, true, 1)`.execute(db);
  await sql`
    INSERT INTO regions_lookup (code, name, zone, is_active, source_version)
    VALUES ('US-CA', 'California', 'West', true, 1), ('US-WA', 'Washington', 'West', true, 1), ('US-NY', 'New York', 'East', true, 1)`.execute(db);
  await sql`
    INSERT INTO districts_lookup (code, name, region_code, is_active, source_version)
    VALUES ('US-CA-LA', 'Los Angeles County', 'US-CA', true, 1), ('US-CA-SF', 'San Francisco County', 'US-CA', true, 1), ('US-NY-NY', 'New York County', 'US-NY', true, 1)`.execute(db);
  await sql`
    INSERT INTO departments_lookup (code, name, is_active, source_version)
    VALUES ('CARDIO', 'Cardiology', true, 1), ('ENDO', 'Endocrinology', true, 1), ('RADIO', 'Radiology', true, 1),
           ('LAB', 'Laboratory', true, 1), ('PHARM', 'Pharmacy', true, 1), ('OLD', 'Closed ward', false, 1)`.execute(db);
  await sql`
    INSERT INTO classification_codes_lookup (code, description, category, is_active, source_version)
    VALUES ('E11.9', 'Type 2 diabetes mellitus without complications', 'Endocrine, nutritional and metabolic diseases', true, 1),
           ('I10', 'Essential (primary) hypertension', 'Diseases of the circulatory system', true, 1)`.execute(db);
}

/**
 * A core app on a fresh, seeded database whose lookup tables were filled by hand, with a
 * masterdata that does not answer, a test identity provider as IAM, and no scheduled reconciliation.
 */
export async function coreTestApp(identityOptions: Parameters<typeof startTestIdentity>[0] = {}) {
  const database = await useTestDatabase('core');
  await withOwnerDatabase(database, seed);
  await withOwnerDatabase(database, seed); // a seed is safe to run on every start
  await fillLookups(database.db);
  const nobody = `http://127.0.0.1:${await freePort()}`;
  const identity = await startTestIdentity(identityOptions);
  const db = database.db as Kysely<CoreDatabase>;
  const server = await buildApp({
    db, logger: false, databaseUrl: database.appUrl, peer: peerUrls('core', { masterdata: nobody, iam: identity.url }), env: { LOOKUP_RECONCILE_AT: 'off' },
    credentials: testCredentials('core'),
    auth: createAuth({ sources: remoteAuthSources(identity.url, { credentials: testCredentials('core') }) }),
  });
  afterAll(async () => {
    await server.close();
    await identity.close();
  });
  const user = identity.user();
  // `app` injects as a signed-in administrator; `server` is the app itself.
  return { app: asUser(server, await identity.token(user)), server, identity, user, database, db };
}
